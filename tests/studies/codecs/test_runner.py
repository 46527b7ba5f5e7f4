"""studies.common.runner and studies.codecs.runner: config drift, and how a branch is started from its trunk."""
from pathlib import Path

from audiocraft_mmd.studies.codecs.plan import BASE_SOLVER, CHOSEN_WEIGHT, Schedule, build_plan, trunk_run, weight_run


def test_changed_default_is_config_drift(dora_dir, monkeypatch):
    """Dora hashes overrides only: an XP folder trained under an older default must not pass as done."""
    import omegaconf
    from audiocraft_mmd.studies.common.runner import config_drift, xp_of
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    for run, extra in ((trunk_run(0, 3), []), (weight_run(CHOSEN_WEIGHT, 0), ['continue_from=//sig/abc'])):
        xp = xp_of(run, [], extra)
        assert config_drift(xp) == []  # no folder yet
        saved = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg))
        (xp.folder / '.hydra').mkdir(parents=True)
        omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
        assert config_drift(xp) == []
        saved.mmd.normalize = 'dimension'
        saved.optim.lr = 1.
        omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
        assert sorted(config_drift(xp)) == ['mmd.normalize', 'optim.lr']
        # A key added later is no drift when its value does what older XPs did, and is one otherwise.
        saved.mmd.normalize, saved.optim.lr = xp.cfg.mmd.normalize, xp.cfg.optim.lr
        del saved.mmd['estimator']
        omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
        assert config_drift(xp) == []
        with omegaconf.open_dict(xp.cfg):
            xp.cfg.mmd.estimator = 'bank'
        assert config_drift(xp) == ['mmd.estimator']
        xp.cfg.mmd.estimator = 'exact'


def test_branch_starts_from_its_trunk_and_a_kernel_gets_its_weight():
    from audiocraft_mmd.studies.codecs.runner import branch_extra
    runs = build_plan(Schedule(seeds=(0,), groups=('kernels',)))
    quadratic = next(r for r in runs if r.kernel == 'quadratic')
    asked = []

    def factors(folder):
        asked.append(folder)
        return {'quadratic': 1.234567e-5, 'linear': 0.01}
    assert branch_extra(quadratic, 'abc123', Path('trunk'), factors) == [
        'continue_from=//sig/abc123', 'losses.mmd=0.0123']  # 1e3 x 1.23e-5, 3 significant digits
    assert asked == [Path('trunk')]
    reference = next(r for r in runs if r.group == 'weight')
    assert branch_extra(reference, 'abc123', Path('trunk'), factors) == ['continue_from=//sig/abc123']
    assert reference.argv(['x=1'], ['continue_from=//sig/abc123'])[-3:] == [
        'optim.epochs=4', 'continue_from=//sig/abc123', 'seed=0']


def test_a_trunk_without_checkpoint_fails_its_branches_without_training(tmp_path):
    from audiocraft_mmd.studies.codecs.runner import resolve_branches
    runs = build_plan(Schedule(seeds=(0,), groups=('alignment',)))
    trunks = {(BASE_SOLVER, 0): {'sig': 'abc', 'folder': str(tmp_path), 'status': 'failed'}}
    resolved = resolve_branches([r for r in runs if not r.is_trunk], trunks, [], lambda folder: {})
    assert [(xp, why) for _, xp, _, why in resolved] == [(None, 'trunk abc not trained')] * 2


def test_the_quantizer_block_in_use_is_a_training_block(dora_dir, monkeypatch):
    """`pvq` decides what a PVQ codec trains, not what an RVQ one does (RVQ XPs predate the block)."""
    import omegaconf
    from audiocraft_mmd.studies.codecs.plan import QUANTIZERS
    from audiocraft_mmd.studies.common.runner import config_drift, xp_of
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    for run, block_counts in ((trunk_run(0, 3), False), (trunk_run(0, 3, QUANTIZERS['pvq_dropout']), True)):
        xp = xp_of(run, [])
        saved = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg))
        saved.pvq.dropout = not xp.cfg.pvq.dropout
        (xp.folder / '.hydra').mkdir(parents=True)
        omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
        assert config_drift(xp) == (['pvq.dropout'] if block_counts else [])


def test_a_changed_dac_default_is_config_drift(dora_dir, monkeypatch):
    """A DAC XP trains what `compression_model` and the `dac` block say (config/model/dac/default.yaml): a changed
    value there is drift, though the DAC solver inherits `encodec.quantizer: rvq` from the EnCodec recipe."""
    import omegaconf
    from audiocraft_mmd.studies.codecs.plan import DAC_SOLVER
    from audiocraft_mmd.studies.common.runner import config_drift, xp_of
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    xp = xp_of(trunk_run(0, 3, DAC_SOLVER), [])
    saved = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg))
    (xp.folder / '.hydra').mkdir(parents=True)
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert config_drift(xp) == []
    saved.dac.decoder_dim = 2 * xp.cfg.dac.decoder_dim
    saved.compression_model = 'encodec'
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert sorted(config_drift(xp)) == ['compression_model', 'dac.decoder_dim']
