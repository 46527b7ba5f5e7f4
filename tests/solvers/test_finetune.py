"""Fine-tuning a released codec (transformers' format, from a hub cache made here, offline): the solver takes its
architecture, encoder-only training keeps the decoder and codebooks bit-identical, errors come at solver start."""
import pytest
import torch

from conftest import (RELEASE_32KHZ, RELEASE_ID, SMALL_32KHZ, TWO_UPDATES, datasource_overrides, publish_in_hub_cache,
                      transformers_encodec)
from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.export import export_compression_model
from audiocraft_mmd.models.codec_source import load_source_model, resolve_source

FINETUNE = ['solver=compression/encodec_mmd_finetune_debug', 'device=cpu', *TWO_UPDATES, 'dataset.batch_size=2']


def _cfg(argv):
    from audiocraft_mmd.train import main
    return main.get_xp(list(argv)).cfg


@pytest.fixture
def release(offline_hub):
    """The small transformers EnCodec published as facebook/encodec_32khz in the offline cache; its conversion."""
    publish_in_hub_cache(transformers_encodec(SMALL_32KHZ), offline_hub)
    return load_source_model(resolve_source(RELEASE_ID))


def _finetuned(argv, dora_dir, monkeypatch):
    """The solver of `argv`, restored from its continue_from, after two training updates and a valid stage."""
    from audiocraft_mmd.train import build_solver_in_process, main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    solver = build_solver_in_process(argv)
    solver.restore()
    solver.run_stage('train', solver.train)
    with torch.no_grad():
        solver.run_stage('valid', solver.valid)
        solver.update_best_state_from_stage('valid')
    solver.save_checkpoints()
    return solver


def _split(state):
    encoder = {k: v for k, v in state.items() if k.startswith('encoder.')}
    return encoder, {k: v for k, v in state.items() if not k.startswith('encoder.')}


@pytest.mark.parametrize('trainable', ['encoder', 'all'])
def test_finetune_from_release(trainable, release, offline_hub, music_dataset, dora_dir, monkeypatch):
    argv = [*FINETUNE, *datasource_overrides(music_dataset), f'finetune.trainable={trainable}', 'optim.ema.use=true',
            'optim.ema.decay=0.9']
    solver = _finetuned(argv, dora_dir, monkeypatch)
    # The architecture came from the checkpoint (the debug recipe has 2 LSTM layers, constant padding, 32 dims).
    assert solver.cfg.seanet.lstm == 1 and solver.cfg.seanet.pad_mode == 'reflect' and solver.cfg.rvq.bins == 64
    released_encoder, released_rest = _split(release.state_dict())
    encoder, rest = _split(solver.model.state_dict())
    best_encoder, best_rest = _split(solver.best_state.state_dict()['model'])
    assert any(not torch.equal(encoder[k], released_encoder[k]) for k in encoder), "the encoder did not train"
    frozen = [all(torch.equal(r[k], released_rest[k]) for k in released_rest) for r in (rest, best_rest)]
    assert frozen == ([True, True] if trainable == 'encoder' else [False, False])
    assert any(not torch.equal(best_encoder[k], released_encoder[k]) for k in best_encoder)
    # The fine-tuned XP is itself a source (//sig/, or exported): same architecture, its best weights.
    mine = resolve_source(f'//sig/{solver.xp.sig}')
    assert mine.architecture()['seanet.lstm'] == 1
    exported = export_compression_model(mine.ref, dora_dir.parent / 'compression_state_dict.bin')
    for source in (mine, resolve_source(str(exported))):  # the XP, and its export (audiocraft's layout)
        reloaded = load_source_model(source).state_dict()
        assert all(torch.equal(reloaded[k], v) for k, v in solver.best_state.state_dict()['model'].items())
    # ... and exports to transformers' format, which decodes as ours does.
    _assert_exports_to_transformers(f'//sig/{solver.xp.sig}', dora_dir.parent / 'hf_export')
    # Resuming needs its own checkpoint only: the release may be gone from the cache by then.
    import shutil
    from audiocraft_mmd.train import build_solver_in_process
    shutil.rmtree(offline_hub)
    resumed = build_solver_in_process(argv)
    assert resumed.cfg.seanet.lstm == 1 and resumed.restore()
    assert all(torch.equal(v, solver.model.state_dict()[k]) for k, v in resumed.model.state_dict().items())


def _assert_exports_to_transformers(ref, folder):
    from transformers import EncodecModel
    from audiocraft_mmd.export import main
    assert main(['--transformers', '--codec', ref, '--out', str(folder)]) == 0
    ours, theirs = load_source_model(resolve_source(ref)), EncodecModel.from_pretrained(folder).eval()
    x = 0.1 * torch.randn(1, 1, 6400, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes, scale = ours.encode(x)
        encoded = theirs.encode(x)
        assert torch.equal(codes, encoded.audio_codes[0])
        audio = ours.decode(codes, scale)
        exported = theirs.decode(encoded.audio_codes, encoded.audio_scales).audio_values
    assert (exported - audio).abs().max() <= 1e-5 * audio.abs().max()


def test_config_architecture_mismatch_is_refused_naming_the_key(release):
    from audiocraft_mmd.solvers import validate_config
    cfg = _cfg([*FINETUNE, 'finetune.architecture=config'])
    with pytest.raises(ConfigError, match=r'seanet\.\w+') as error:
        validate_config(cfg)
    assert 'finetune.architecture=checkpoint' in str(error.value)
    adopted = _cfg(FINETUNE)
    validate_config(adopted)  # takes the architecture
    assert adopted.seanet.lstm == 1 and adopted.rvq.n_q == 4
    adopted.finetune.architecture = 'config'
    validate_config(adopted)  # now equal: accepted


@pytest.mark.parametrize('solver', ['encodec_mmd_finetune', 'encodec_mmd_finetune_encoder'])
def test_paper_finetune_configs_take_the_released_32khz_architecture(solver, offline_hub):
    from audiocraft_mmd.solvers import validate_config
    from audiocraft_mmd.solvers.finetune import mismatched_keys
    publish_in_hub_cache(transformers_encodec(RELEASE_32KHZ), offline_hub)
    cfg = _cfg([f'solver=compression/{solver}'])
    arch = resolve_source(cfg.continue_from).architecture()
    assert mismatched_keys(cfg, arch) == ['seanet.pad_mode']  # transformers' reflect padding, our configs' zeros
    validate_config(cfg)
    assert mismatched_keys(cfg, arch) == [] and cfg.seanet.pad_mode == 'reflect'


def test_local_transformers_folder_is_a_source(tmp_path):
    from audiocraft_mmd.models.loaders import load_compression_model
    hf_model = transformers_encodec(SMALL_32KHZ)
    hf_model.save_pretrained(tmp_path / 'codec')
    refs = (tmp_path / 'codec', tmp_path / 'codec' / 'config.json')
    models = [load_source_model(resolve_source(str(ref))) for ref in refs]
    models.append(load_compression_model(tmp_path / 'codec'))  # as an LM's compression_model_checkpoint
    x = 0.1 * torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf_model.encode(x).audio_codes[0]
        assert all(torch.equal(model.encode(x)[0], expected) for model in models)


def test_missing_release_offline_names_id_cache_command_and_variable(offline_hub):
    from audiocraft_mmd.models.codec_source import MissingRelease
    with pytest.raises(MissingRelease) as error:
        resolve_source(f'//pretrained/{RELEASE_ID}')
    message = str(error.value)
    for part in (RELEASE_ID, str(offline_hub), f'hf download {RELEASE_ID}', 'HF_HUB_CACHE', 'HF_HOME'):
        assert part in message


def test_missing_release_fails_at_solver_start_as_fast_as_a_config_error(offline_hub, dora_dir, tmp_path):
    """Offline with an empty cache, the missing release is reported by the config checks that start a solver, no
    more than 5 s after a config error would be. Both are timed here, in this process, through the same entry
    (`solvers.validate_config`, the first thing `dora run` does once the config is composed; the time before it is
    the same for both). The release goes first, so any import only it needs counts against it. Then `dora run`
    itself shows the message, before any data is read (the datasource does not even exist)."""
    import time
    from conftest import run_dora
    from audiocraft_mmd.models.codec_source import MissingRelease
    from audiocraft_mmd.solvers import validate_config
    import audiocraft_mmd.solvers.compression_mmd  # noqa: F401 (imported by both paths before their check)
    base = ['solver=compression/encodec_mmd_finetune_debug', 'device=cpu', *datasource_overrides(tmp_path / 'none')]
    times = {}
    for name, extra, error in (('release', [], MissingRelease),
                               ('config', ['continue_from=null', 'losses.mmd=-1'], ConfigError)):
        cfg = _cfg(base + extra)
        start = time.perf_counter()
        with pytest.raises(error):
            validate_config(cfg)
        times[name] = time.perf_counter() - start
    assert times['release'] - times['config'] < 5, times
    proc = run_dora(base, dora_dir, check=False)
    assert proc.returncode != 0
    assert 'MissingRelease' in proc.stderr and f'hf download {RELEASE_ID}' in proc.stderr
    assert str(offline_hub) in proc.stderr and 'HF_HUB_CACHE' in proc.stderr
    assert 'in validate_config' in proc.stderr  # raised by the config checks, not by data loading
    assert 'build_dataloaders' not in proc.stderr and 'check_datasource' not in proc.stderr
