"""CompressionMMDSolver: gradient routing, equivalence with audiocraft at weight 0, stream options."""
import copy

import pytest
import torch

from audiocraft.solvers.compression import CompressionSolver as AudiocraftCompressionSolver
from audiocraft_mmd.train import main


def _batches(solver, count):
    loader = iter(solver.dataloaders['train'])
    return [next(loader) for _ in range(count)]


def test_mmd_backward_reaches_encoder_only(make_solver):
    solver = make_solver()
    batches = _batches(solver, 2)
    solver.model.train()
    solver.model(batches[0])  # initializes the codebooks (k-means) as a first training step would
    solver.model.zero_grad()
    mmd = solver.macro_batch_mmd(batches, with_grad=True)
    (solver.mmd_weight * mmd).backward()
    encoder_grads = [p.grad for p in solver.model.encoder.parameters()]
    assert all(g is not None for g in encoder_grads)
    assert sum(g.abs().sum().item() for g in encoder_grads) > 0
    others = list(solver.model.decoder.parameters()) + list(solver.model.quantizer.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in others)


def test_streams_do_not_update_codebooks(make_solver):
    solver = make_solver()
    batches = _batches(solver, 2)
    solver.model.train()
    solver.model(batches[0])
    before = copy.deepcopy(solver.model.quantizer.state_dict())
    solver.macro_batch_mmd(batches, with_grad=True)
    after = solver.model.quantizer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def _one_train_step(solver, batch):
    return solver.run_stage('train', lambda: solver.run_step(0, batch, {}))


def test_weight_zero_equals_audiocraft(make_solver):
    # codec_training set to audiocraft's behaviour (our defaults re-initialize the model and revive dead codes)
    ours = make_solver('losses.mmd=0', 'codec_training.init=default', 'codec_training.dead_codes=audiocraft', seed=3)
    batch = _batches(ours, 1)[0]
    # the same config through audiocraft's own solver class, same seed
    xp = main.get_xp(['solver=compression/encodec_mmd_debug', 'device=cpu', 'losses.mmd=0'] +
                     [f'datasource.{k}={v}' for k, v in ours.cfg.datasource.items() if k in
                      ('train', 'valid', 'evaluate', 'generate')])
    cfg = copy.deepcopy(ours.cfg)
    from omegaconf import open_dict
    with open_dict(cfg.losses):
        del cfg.losses['mmd']
    torch.manual_seed(3)
    with xp.enter():
        theirs = AudiocraftCompressionSolver(cfg)
    grads = {}
    for name, solver in (('ours', ours), ('theirs', theirs)):
        solver.rng = torch.Generator().manual_seed(1234)
        # Record the gradients the optimizer is given (Adam's first step is ~lr * sign(grad), so
        # comparing parameters after it would amplify round-off of near-zero gradients).
        solver.optimizer.step = lambda solver=solver, name=name: grads.__setitem__(
            name, [p.grad.clone() for p in solver.model.parameters()])
    torch.manual_seed(7)  # the codebooks' k-means init draws from the global RNG
    m_ours = _one_train_step(ours, batch)
    torch.manual_seed(7)
    m_theirs = _one_train_step(theirs, batch)
    assert set(m_ours) == set(m_theirs)
    for key in set(m_ours) - {'duration'}:
        assert torch.allclose(torch.as_tensor(m_ours[key]), torch.as_tensor(m_theirs[key]), rtol=1e-5), key
    for g_ours, g_theirs in zip(grads['ours'], grads['theirs']):
        assert torch.allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('streams', ['quantized', 'residual'])
def test_both_stream_options_train(make_solver, streams):
    solver = make_solver(f'mmd.streams={streams}', 'mmd.num_batches=2')
    solver.model.train()
    solver.rng = torch.Generator().manual_seed(0)
    encoder = [p.detach().clone() for p in solver.model.encoder.parameters()]
    batches = _batches(solver, 2)
    # both steps in one stage: the second completes the macro-batch of 2 and adds the MMD term
    metrics = solver.run_stage('train', lambda: [solver.run_step(i, b, {}) for i, b in enumerate(batches)][-1])
    assert 'mmd' in metrics and torch.isfinite(torch.as_tensor(metrics['mmd']))
    assert any(not torch.equal(a, b) for a, b in zip(encoder, solver.model.encoder.parameters()))


def test_nan_in_mmd_is_a_clear_error(make_solver):
    solver = make_solver()
    batch = _batches(solver, 1)[0]
    batch[0, 0, :100] = float('nan')
    with pytest.raises(ValueError, match='streams'):
        solver.macro_batch_mmd([batch], with_grad=False)


def test_exclude_shared_reaches_the_loss(make_solver):
    """`mmd.exclude_shared` changes the estimate (it drops the cross pairs sharing a code)."""
    values = {}
    for flag in ('false', 'true'):
        solver = make_solver(f'mmd.exclude_shared={flag}')
        assert solver.mmd_loss.exclude_shared is (flag == 'true')
        batches = _batches(solver, 2)
        solver.model.train()
        solver.model(batches[0])
        solver.mmd_rng.manual_seed(0)
        values[flag] = solver.macro_batch_mmd(batches, with_grad=False).item()
    assert values['false'] != values['true']
