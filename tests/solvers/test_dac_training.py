"""`solver=compression/dac_mmd_cpu` in process: 2 updates with the MMD term and liveness metrics, the MMD gradient
routing in the solver, weight 0 = the plain compression solver, checkpoint -> loader / export, and the configs."""
import copy

import pytest
import torch

from audiocraft_mmd.models.builders import codebook_counts, hop_length
from audiocraft_mmd.models.dac_codec import DACModel
from audiocraft_mmd.solvers.builders import validate_config
from audiocraft_mmd.solvers.compression import CompressionSolver
from audiocraft_mmd.train import main

from conftest import TWO_UPDATES


def _argv(music_dataset, *overrides):
    from conftest import datasource_overrides
    return ['solver=compression/dac_mmd_cpu', 'device=cpu', *datasource_overrides(music_dataset), *TWO_UPDATES,
            *overrides]


@pytest.fixture(scope='module')
def trained(music_dataset, tmp_path_factory):
    """(solver, train metrics, valid metrics, encoder params before training), checkpoint written."""
    from conftest import trained_in_process
    with trained_in_process(_argv(music_dataset), tmp_path_factory.mktemp('dac_dora')) as result:
        yield result


def test_two_updates_train_with_the_mmd_and_log_liveness(trained):
    solver, train, valid, before = trained
    assert isinstance(solver.model, DACModel) and solver.cfg.mmd.streams == 'projected'
    assert sum(p.numel() for p in solver.model.parameters()) < 1_000_000
    assert torch.isfinite(torch.as_tensor(train['mmd'])), "the second update completes the macro-batch of 2"
    assert train['bandwidth'] == pytest.approx(4 * 6 * 50 / 1000)  # 4 codebooks x 64 entries at 50 Hz
    assert train['vq_commitment'] > 0 and 'penalty' in train
    assert any(not torch.equal(a, b) for a, b in zip(before, solver.model.encoder.parameters()))
    for key in ('sisnr_db', 'cross_corr', 'min_usage', 'mmd', *(f'perplexity_{k}' for k in range(4))):
        assert key in valid and torch.isfinite(torch.as_tensor(valid[key])), key
    # quantizer warm-up: updates 0 and 1 of 120 give the decoder 1 and 119/120 of the residual (averaged)
    assert solver.cfg.codec_training.quantizer_warmup == 120
    assert train['residual_mix'] == pytest.approx((1 + 119 / 120) / 2)
    assert 'residual_mix' not in valid


@pytest.mark.parametrize('kind', ['projected', 'quantized'])
def test_solver_mmd_gradient_reaches_the_encoder_only(trained, kind):
    solver = trained[0]
    loader = iter(solver.dataloaders['train'])
    batches = [next(loader) for _ in range(2)]
    solver.model.train()
    solver.model.zero_grad()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(solver.cfg.mmd, 'streams', kind)
        (solver.mmd_weight * solver.macro_batch_mmd(batches, with_grad=True)).backward()
    encoder = [p.grad for p in solver.model.encoder.parameters()]
    assert all(g is not None for g in encoder) and sum(g.abs().sum().item() for g in encoder) > 0
    others = [*solver.model.decoder.parameters(), *solver.model.quantizer.parameters()]
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in others)
    solver.model.zero_grad()


def test_weight_zero_changes_nothing(music_dataset, dora_dir, monkeypatch):
    """compression_mmd at losses.mmd=0 hands the optimizer the plain compression solver's gradients (same
    quantizer dropout draws)."""
    from audiocraft_mmd.train import build_solver_in_process
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    ours = build_solver_in_process(_argv(music_dataset, 'losses.mmd=0'), seed=3)
    batch = next(iter(ours.dataloaders['train']))
    xp = main.get_xp(_argv(music_dataset, 'losses.mmd=0'))
    torch.manual_seed(3)
    with xp.enter():
        plain = CompressionSolver(copy.deepcopy(ours.cfg))
    grads = {}
    for name, solver in (('ours', ours), ('plain', plain)):
        solver.rng = torch.Generator().manual_seed(1234)
        solver.optimizer.step = lambda solver=solver, name=name: grads.__setitem__(
            name, [p.grad.clone() for p in solver.model.parameters()])
    for solver in (ours, plain):
        torch.manual_seed(7)  # quantizer dropout draws from the global RNG
        solver.run_stage('train', lambda solver=solver: solver.run_step(0, batch, {}))
    assert len(grads['ours']) == len(grads['plain']) > 0
    assert all(torch.equal(a, b) for a, b in zip(grads['ours'], grads['plain']))


def _same_codec(model, reference, audio):
    reference.eval()
    assert isinstance(model, DACModel)
    codes, _ = model.encode(audio)
    assert codes.shape == (audio.shape[0], 4, 50)
    assert torch.equal(codes, reference.encode(audio)[0])
    assert torch.allclose(model.decode(codes), reference.decode(codes))


def test_checkpoint_loads_and_exports(trained, tmp_path):
    from conftest import reloaded_codecs
    solver = trained[0]
    audio = next(iter(solver.dataloaders['valid']))[:2]
    for model in reloaded_codecs(solver, tmp_path):
        _same_codec(model, solver.model, audio)


@pytest.mark.parametrize('name, bins', [('dac_mmd_cpu', 64), ('dac_mmd_32khz', 2048)])
def test_dac_configs_keep_encodec_mmds_tokens(name, bins):
    """4 codebooks at 50 Hz, as many entries as the EnCodec-MMD config of the same scale: the same bandwidth."""
    cfg = main.get_xp([f'solver=compression/{name}']).cfg
    validate_config(cfg)
    assert cfg.compression_model == 'dac' and cfg.mmd.streams == 'projected' and cfg.losses.mmd == 1000
    assert codebook_counts(cfg) == (4, bins) and cfg.sample_rate // hop_length(cfg) == 50
    encodec = main.get_xp([f"solver=compression/{name.replace('dac', 'encodec')}"]).cfg
    assert codebook_counts(encodec) == (4, bins) and encodec.sample_rate // hop_length(encodec) == 50


@pytest.mark.parametrize('override, key', [
    ('dac.n_codebooks=1', 'dac.n_codebooks'),   # the loss needs 2 codebooks
    ('mmd.streams=latent', 'mmd.streams'),
    ('dac.encoder_rates=[2,4,8,5]', 'dac.encoder_rates'),
    ('codec_training.dead_codes=expire', 'codec_training.dead_codes'),
    ('codec_training.quantizer_warmup=-1', 'codec_training.quantizer_warmup'),
])
def test_config_errors_name_key_and_value(override, key):
    from audiocraft_mmd.config_validation import ConfigError
    cfg = main.get_xp(['solver=compression/dac_mmd_cpu', override]).cfg
    with pytest.raises(ConfigError, match=rf"`{key}="):
        validate_config(cfg)


def test_no_quantizer_warmup_when_continuing_from_a_trained_codec(trained, music_dataset, tmp_path):
    """A branch (`continue_from`) starts from a trained quantizer: the decoder gets the codes from its first update."""
    from conftest import trained_in_process
    argv = _argv(music_dataset, f'continue_from={trained[0].folder}')
    with trained_in_process(argv, tmp_path / 'branch_dora') as (solver, train, _, _):
        assert solver.model.quantizer.residual_mix == 0. and 'residual_mix' not in train
