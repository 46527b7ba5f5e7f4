"""The compression solvers with `encodec.quantizer=pvq`: MMD gradient routing, weight 0, config checks,
a short training run with liveness metrics, and the checkpoint -> loader / export path."""
import copy

import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.quantization.product import ProductVectorQuantizer
from audiocraft_mmd.solvers.builders import validate_config
from audiocraft_mmd.solvers.compression import CompressionSolver
from audiocraft_mmd.train import main

PVQ = ('encodec.quantizer=pvq',)


def _batches(solver, count):
    loader = iter(solver.dataloaders['train'])
    return [next(loader) for _ in range(count)]


@pytest.mark.parametrize('dropout', ['false', 'true'])
def test_mmd_gradient_reaches_the_encoder_only(make_solver, dropout):
    solver = make_solver(*PVQ, f'pvq.dropout={dropout}')
    assert isinstance(solver.model.quantizer, ProductVectorQuantizer)
    assert solver.model.quantizer.dropout is (dropout == 'true')
    batches = _batches(solver, 2)
    solver.model.train()
    solver.model(batches[0])  # k-means init, as a first training step
    solver.model.zero_grad()
    mmd = solver.macro_batch_mmd(batches, with_grad=True)
    assert torch.isfinite(mmd)
    (solver.mmd_weight * mmd).backward()
    encoder = [p.grad for p in solver.model.encoder.parameters()]
    assert all(g is not None for g in encoder) and sum(g.abs().sum().item() for g in encoder) > 0
    others = list(solver.model.decoder.parameters()) + list(solver.model.quantizer.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in others)


def test_weight_zero_changes_nothing(make_solver):
    """compression_mmd at losses.mmd=0 hands the optimizer the gradients of the plain compression solver
    (PVQ-dropout on: the dropout draws must be the same too)."""
    ours = make_solver(*PVQ, 'pvq.dropout=true', 'losses.mmd=0', seed=3)
    batch = _batches(ours, 1)[0]
    cfg = copy.deepcopy(ours.cfg)
    xp = main.get_xp(['solver=compression/encodec_mmd_debug', 'device=cpu', *PVQ, 'pvq.dropout=true', 'losses.mmd=0'])
    torch.manual_seed(3)
    with xp.enter():
        plain = CompressionSolver(cfg)
    assert type(plain.model.quantizer) is ProductVectorQuantizer
    grads = {}
    for name, solver in (('ours', ours), ('plain', plain)):
        solver.rng = torch.Generator().manual_seed(1234)
        solver.optimizer.step = lambda solver=solver, name=name: grads.__setitem__(
            name, [p.grad.clone() for p in solver.model.parameters()])
    metrics = {}
    for name, solver in (('ours', ours), ('plain', plain)):
        torch.manual_seed(7)  # k-means init and the dropout draw from the global RNG
        metrics[name] = solver.run_stage('train', lambda solver=solver: solver.run_step(0, batch, {}))
    assert 'mmd' not in metrics['ours']
    for key in set(metrics['plain']) - {'duration'}:
        assert torch.allclose(torch.as_tensor(metrics['ours'][key]), torch.as_tensor(metrics['plain'][key])), key
    assert len(grads['ours']) == len(grads['plain'])
    for g_ours, g_plain in zip(grads['ours'], grads['plain']):
        assert torch.equal(g_ours, g_plain)


@pytest.mark.parametrize('override, key', [
    ('encodec.quantizer=pq', 'encodec.quantizer'),
    ('pvq.dropout=1', 'pvq.dropout'),
    ('pvq.n_q=3', 'pvq.n_q'),  # 32 latent dims do not split into 3 groups
    ('pvq.n_q=1', 'pvq.n_q'),  # the loss needs 2 codebooks
    ('pvq.bins=1', 'pvq.bins'),
    ('+pvq.q_dropout=true', 'pvq'),
])
def test_config_errors_name_key_and_value(override, key):
    xp = main.get_xp(['solver=compression/encodec_mmd_pvq_cpu', override])
    value = override.split('=', 1)[1]
    with pytest.raises(ConfigError, match=rf"`{key}=.*{value if key != 'pvq' else 'q_dropout'}"):
        validate_config(xp.cfg)


@pytest.mark.parametrize('name, dropout, bins, dimension', [
    ('encodec_mmd_pvq_cpu', False, 64, 32),
    ('encodec_mmd_pvq_dropout_cpu', True, 64, 32),
    ('encodec_mmd_pvq_32khz', False, 2048, 128),
])
def test_pvq_configs_compose_and_validate(name, dropout, bins, dimension):
    cfg = main.get_xp([f'solver=compression/{name}']).cfg
    validate_config(cfg)
    assert cfg.encodec.quantizer == 'pvq' and cfg.pvq.dropout is dropout
    # the same codebooks (count, size) as the RVQ codec of the config it overrides: same bandwidth
    assert (cfg.pvq.n_q, cfg.pvq.bins, cfg.seanet.dimension) == (cfg.rvq.n_q, bins, dimension)
