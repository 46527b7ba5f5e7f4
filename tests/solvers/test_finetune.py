"""Fine-tuning a released codec (transformers' format, from a hub cache made here, offline): the solver takes its
architecture, encoder-only training keeps the decoder and codebooks bit-identical, errors come at solver start."""
import pytest
import torch

from conftest import (RELEASE_ID, SMALL_32KHZ, TWO_UPDATES, datasource_overrides, publish_in_hub_cache,
                      transformers_encodec)
from audiocraft_mmd.config_validation import ConfigError
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
def test_finetune_from_release(trainable, release, music_dataset, dora_dir, monkeypatch):
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
    # The fine-tuned XP is itself a source (//sig/): same architecture, its best weights.
    mine = resolve_source(f'//sig/{solver.xp.sig}')
    assert mine.architecture()['seanet.lstm'] == 1
    reloaded = load_source_model(mine).state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in solver.best_state.state_dict()['model'].items())


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


def test_local_transformers_folder_is_a_source(tmp_path):
    hf_model = transformers_encodec(SMALL_32KHZ)
    hf_model.save_pretrained(tmp_path / 'codec')
    for ref in (tmp_path / 'codec', tmp_path / 'codec' / 'config.json'):
        model = load_source_model(resolve_source(str(ref)))
        assert model.num_codebooks == 4 and model.cardinality == 64


def test_missing_release_offline_names_id_cache_command_and_variable(offline_hub):
    from audiocraft_mmd.models.codec_source import MissingRelease
    with pytest.raises(MissingRelease) as error:
        resolve_source(f'//pretrained/{RELEASE_ID}')
    message = str(error.value)
    for part in (RELEASE_ID, str(offline_hub), f'hf download {RELEASE_ID}', 'HF_HUB_CACHE', 'HF_HOME'):
        assert part in message
