"""CUDA checks, skipped without a GPU; `scripts/device_check.sh` runs them on a lent GPU machine.

- The loss (exact and bank) on CUDA equals the CPU one in float64 (same rows, same CPU generator).
- A CUDA generator works too (the permutations are drawn on its device).
- Training steps of the solver on CUDA, exact then bank, on the data named by `MMD_DEVICE_DATA`
  (a dataset root with `egs/`; skipped when unset).
- The 2-rank checks of `tests/test_distributed.py` with nccl, when 2 GPUs are visible.
"""
import os

import pytest
import torch
import torch.multiprocessing as mp

from audiocraft_mmd.losses import MMDBank, MMDLoss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _streams() -> torch.Tensor:
    z = torch.randn(3, 4, 16, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z[:, 1] += z[:, 0]
    return z


@pytest.mark.parametrize('normalize', ['none', 'codebook'])
@pytest.mark.parametrize('kernel', ['gaussian', 'squared_inverse', 'linear', 'quadratic'])
def test_loss_on_cuda_equals_cpu_in_float64(kernel, normalize):
    loss = MMDLoss(kernel, normalize=normalize, block_size=37)  # several tiles, uneven last one
    cpu, gpu = _streams().requires_grad_(), _streams().cuda().requires_grad_()
    v_cpu, v_gpu = loss(cpu, torch.Generator().manual_seed(1)), loss(gpu, torch.Generator().manual_seed(1))
    (v_cpu + v_gpu).backward()
    # float64 both; only the summation order differs: ~1e-16 per term, ~1e5 terms
    assert abs(v_cpu.item() - v_gpu.item()) <= 1e-9 * max(1., abs(v_cpu.item()))
    assert torch.allclose(gpu.grad.cpu(), cpu.grad, rtol=1e-7, atol=1e-12)


def test_bank_on_cuda_equals_cpu_in_float64():
    loss = MMDLoss('gaussian', block_size=37)
    banks = {'cpu': MMDBank(loss, 3), 'cuda': MMDBank(loss, 3)}
    for step in range(3):
        results = {}
        for device, bank in banks.items():
            rows = loss.aligned_rows(_streams() + step).to(device).requires_grad_()
            result = bank(rows, torch.Generator().manual_seed(step), with_value=True)
            result.loss.backward()
            results[device] = (result.value.item(), rows.grad.cpu())
        assert abs(results['cpu'][0] - results['cuda'][0]) <= 1e-9 * max(1., abs(results['cpu'][0]))
        assert torch.allclose(results['cpu'][1], results['cuda'][1], rtol=1e-7, atol=1e-12)


def test_cuda_generator():
    value = MMDLoss()(_streams().float().cuda(), torch.Generator(device='cuda').manual_seed(0))
    assert value.device.type == 'cuda' and torch.isfinite(value)


@pytest.mark.skipif(not os.environ.get('MMD_DEVICE_DATA'), reason="MMD_DEVICE_DATA (a dataset root) not set")
@pytest.mark.parametrize('estimator', ['exact', 'bank'])
def test_solver_steps_on_cuda(tmp_path, monkeypatch, estimator):
    from audiocraft_mmd.train import get_solver, main
    monkeypatch.setattr(main.dora, 'dir', tmp_path)
    root = os.environ['MMD_DEVICE_DATA']
    splits = ('train', 'valid', 'evaluate', 'generate')
    argv = ['solver=compression/encodec_mmd_debug', 'device=cuda', 'dataset.num_workers=0', 'mmd.num_batches=2',
            f'mmd.estimator={estimator}', *[f'datasource.{s}={root}/egs/{s}' for s in splits]]
    xp = main.get_xp(argv)
    with xp.enter():
        solver = get_solver(xp.cfg)
    solver.rng = torch.Generator().manual_seed(0)
    loader = iter(solver.dataloaders['train'])
    batches = [next(loader) for _ in range(2)]
    encoder = [p.detach().clone() for p in solver.model.encoder.parameters()]
    metrics = solver.run_stage('train', lambda: [solver.run_step(i, b, {}) for i, b in enumerate(batches)][-1])
    assert 'mmd' in metrics and torch.isfinite(torch.as_tensor(metrics['mmd']))
    assert all(p.device.type == 'cuda' for p in solver.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(encoder, solver.model.encoder.parameters()))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_rank_nccl(tmp_path):
    from test_distributed import _worker
    mp.spawn(_worker, args=(str(tmp_path / 'init'), 'nccl', 'cuda'), nprocs=2, join=True)
