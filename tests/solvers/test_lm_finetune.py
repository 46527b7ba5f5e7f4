"""LM continuation from a released MusicGen LM (issue 40, item 3), offline: a tiny LM in facebook/musicgen-small's
release layout (audiocraft-format `state_dict.bin` with a T5 conditioner, `compression_state_dict.bin`), published
in a hub cache made in the test (HF_HUB_OFFLINE=1), continued on a debug codec's tokens, exported, and loaded with
`MusicGenMMD.get_pretrained(folder)`."""
import json

import omegaconf
import pytest
import torch

from conftest import datasource_overrides, run_dora, xp_sig
from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.solvers.lm_finetune import (CONDITIONER_PREFIX, continued_state, release_config,
                                                take_release_architecture)

RELEASE = 'facebook/musicgen-small'
T5 = {'description': {'model': 't5', 't5': {'name': 't5-base', 'finetune': False, 'word_dropout': 0.3,
                                            'normalize_text': False}}}


def publish_release(cache, state: dict, cfg: omegaconf.DictConfig, codec_pkg: dict = None) -> None:
    from audiocraft_mmd.models.hub_cache import publish
    folder = cache / 'export'
    folder.mkdir()
    torch.save({'best_state': state, 'xp.cfg': omegaconf.OmegaConf.to_yaml(cfg), 'exported': True},
               folder / 'state_dict.bin')
    if codec_pkg is not None:
        torch.save(codec_pkg, folder / 'compression_state_dict.bin')
    publish(folder, cache, RELEASE)


def tiny_release(codec_sig: str, music_dataset):
    """(state, cfg) of a 1-layer LM shaped like musicgen-small's package: the debug LM with a T5 conditioner
    (weights: T5's output projection 768 -> dim; T5 itself is never in the package) and one transformer layer."""
    from audiocraft.models import builders
    from audiocraft_mmd.train import main as train_main
    argv = ['solver=musicgen/debug', 'device=cpu', f'compression_model_checkpoint=//sig/{codec_sig}',
            *datasource_overrides(music_dataset)]
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(train_main.get_xp(argv).cfg, resolve=True))
    cfg.transformer_lm.num_layers = 1
    torch.manual_seed(0)
    state = {k: v for k, v in builders.get_lm_model(cfg).state_dict().items() if not k.startswith(CONDITIONER_PREFIX)}
    dim = cfg.transformer_lm.dim
    state[CONDITIONER_PREFIX + 'conditioners.description.output_proj.weight'] = torch.randn(dim, 768) / 30
    state[CONDITIONER_PREFIX + 'conditioners.description.output_proj.bias'] = torch.zeros(dim)
    cfg.conditioners = T5
    return state, cfg


@pytest.mark.slow
def test_lm_continues_from_a_release_offline_and_exports(music_dataset, session_dora_dir, debug_codec_sig,
                                                         offline_hub, tmp_path, monkeypatch):
    from audiocraft_mmd.export import export_musicgen
    from audiocraft_mmd.models import MusicGenMMD
    from audiocraft_mmd.models.exported import compression_package
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    state, cfg = tiny_release(debug_codec_sig, music_dataset)
    publish_release(offline_hub, state, cfg, compression_package(f'//sig/{debug_codec_sig}')[0])
    argv = ['solver=musicgen/musicgen_mmd_finetune_debug', 'device=cpu', 'optim.epochs=1',
            'optim.updates_per_epoch=2', 'generate.every=1000', 'evaluate.every=1000',
            f'compression_model_checkpoint=//sig/{debug_codec_sig}', *datasource_overrides(music_dataset)]
    proc = run_dora(argv, session_dora_dir)
    log = proc.stdout + proc.stderr
    assert "conditioner of the config" in log and "t5-base" in log, "T5 is not cached: the config's LUT replaces it"
    assert "transformer_lm from facebook/musicgen-small" in log
    sig = xp_sig(argv)
    trained = torch.load(session_dora_dir / 'xps' / sig / 'checkpoint.th', weights_only=True)['best_state']['model']
    # the transformer continued from the release (2 Adam updates of lr 1e-3 move it little; a fresh init of the
    # same shape would be uncorrelated with it), the conditioner is the config's LUT
    for key in ('transformer.layers.0.linear1.weight', 'emb.0.weight', 'linears.3.weight'):
        a, b = trained[key].flatten().float(), state[key].flatten().float()
        assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9, key
    assert not any(k.startswith(CONDITIONER_PREFIX) and 'output_proj.weight' in k and v.shape[-1] == 768
                   for k, v in trained.items())
    assert sum(k.startswith('transformer.layers.') and k.endswith('linear1.weight') for k in trained) == 1
    out = tmp_path / 'export'
    export_musicgen(f'//sig/{sig}', out)
    model = MusicGenMMD.get_pretrained(str(out), device='cpu')
    assert len(model.lm.transformer.layers) == 1 and model.lm.card == 64
    model.set_generation_params(duration=0.1)
    wav = model.generate(['folk'])
    assert wav.shape[0] == 1 and torch.isfinite(wav).all()
    history = json.loads((session_dora_dir / 'xps' / sig / 'history.json').read_text())
    assert history[-1]['train']['ce'] > 0


def test_missing_release_fails_at_the_config_checks_naming_how_to_get_it(offline_hub):
    from audiocraft_mmd.models.codec_source import MissingRelease
    cfg = omegaconf.OmegaConf.create({'continue_from': f'//pretrained/{RELEASE}',
                                      'lm_finetune': {'architecture': 'checkpoint', 'conditioner': 'auto'}})
    with pytest.raises(MissingRelease, match=r"MusicGen LM 'facebook/musicgen-small'.*hf download") as info:
        take_release_architecture(cfg)
    assert str(offline_hub) in str(info.value) and 'HF_HUB_CACHE' in str(info.value)


def _fake_release(offline_hub, conditioners) -> None:
    cfg = omegaconf.OmegaConf.create({'sample_rate': 32000, 'channels': 1, 'transformer_lm': {'dim': 8},
                                      'codebooks_pattern': {'modeling': 'delay'}, 'conditioners': conditioners,
                                      'fuser': {'cross': list(conditioners)}})
    publish_release(offline_hub, {'emb.0.weight': torch.zeros(2, 8)}, cfg)


def test_conditioner_release_without_its_text_model_is_a_config_error(offline_hub):
    _fake_release(offline_hub, T5)
    cfg = omegaconf.OmegaConf.create({'continue_from': f'//pretrained/{RELEASE}', 'sample_rate': 32000, 'channels': 1,
                                      'lm_finetune': {'architecture': 'checkpoint', 'conditioner': 'release'}})
    with pytest.raises(ConfigError, match=r'lm_finetune.conditioner=release.*t5-base'):
        take_release_architecture(cfg)


def test_auto_keeps_a_download_free_release_conditioner_and_takes_the_architecture(offline_hub):
    lut = {'description': {'model': 'lut', 'lut': {'n_bins': 4, 'dim': 8, 'tokenizer': 'noop', 'pad_idx': 0}}}
    _fake_release(offline_hub, lut)
    cfg = omegaconf.OmegaConf.create({'continue_from': f'//pretrained/{RELEASE}', 'sample_rate': 32000, 'channels': 1,
                                      'transformer_lm': {'dim': 64, 'num_layers': 2}, 'conditioners': T5,
                                      'lm_finetune': {'architecture': 'checkpoint', 'conditioner': 'auto'}})
    assert take_release_architecture(cfg) == 'release'
    assert cfg.transformer_lm == {'dim': 8} and cfg.conditioners.description.model == 'lut'
    assert cfg.lm_finetune.conditioner == 'release'
    assert release_config(f'{RELEASE}').transformer_lm.dim == 8


def test_continued_state_replaces_only_the_conditioner_and_names_a_misfit():
    release = {'emb.0.weight': torch.ones(3, 2), CONDITIONER_PREFIX + 'a.output_proj.weight': torch.ones(2, 768)}
    model = {'emb.0.weight': torch.zeros(3, 2), CONDITIONER_PREFIX + 'a.embed.weight': torch.zeros(4, 2)}
    state = continued_state(release, model, 'config')
    assert torch.equal(state['emb.0.weight'], torch.ones(3, 2))
    assert set(state) == set(model) and torch.equal(state[CONDITIONER_PREFIX + 'a.embed.weight'], torch.zeros(4, 2))
    with pytest.raises(ConfigError, match='condition_provider'):
        continued_state(release, model, 'release')
    with pytest.raises(ConfigError, match=r'`emb.0.weight`'):
        continued_state({**release, 'emb.0.weight': torch.ones(5, 2)}, model, 'config')
