"""reproduce.runner: an XP trained under a changed default is config drift."""
from audiocraft_mmd.reproduce.plan import CHOSEN_WEIGHT


def test_changed_default_is_config_drift(dora_dir, monkeypatch):
    """Dora hashes overrides only: an XP folder trained under an older default must not pass as done."""
    import omegaconf
    from audiocraft_mmd.reproduce.plan import weight_run
    from audiocraft_mmd.reproduce.runner import config_drift, xp_of
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    xp = xp_of(weight_run(CHOSEN_WEIGHT, 0), [])
    assert config_drift(xp) == []  # no folder yet
    saved = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg))
    (xp.folder / '.hydra').mkdir(parents=True)
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert config_drift(xp) == []
    saved.mmd.normalize = 'dimension'
    saved.optim.lr = 1.
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert sorted(config_drift(xp)) == ['mmd.normalize', 'optim.lr']
