"""`solver=compression/encodec_mmd_cpu mmd.shuffle=conditional` trains in-process: a few updates with both
estimators, the loss finite, its gradient on the encoder (issue #19)."""
import pytest
import torch

from conftest import datasource_overrides


@pytest.fixture
def cpu_solver(music_dataset, dora_dir, monkeypatch):
    """The solver `dora run solver=compression/encodec_mmd_cpu mmd.shuffle=conditional ...` builds."""
    from audiocraft_mmd.train import build_solver_in_process, main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)

    def _make(*overrides):
        return build_solver_in_process(['solver=compression/encodec_mmd_cpu', 'device=cpu', 'mmd.shuffle=conditional',
                                        *datasource_overrides(music_dataset), *overrides])
    return _make


def _batches(solver, count):
    loader = iter(solver.dataloaders['train'])
    return [next(loader) for _ in range(count)]


def test_conditional_mmd_gradient_reaches_the_encoder(cpu_solver):
    solver = cpu_solver('mmd.num_batches=2')
    assert solver.mmd_loss.shuffle == 'conditional'
    batches = _batches(solver, 2)
    solver.model.train()
    solver.model(batches[0])  # k-means init of the codebooks, as a first step would
    solver.model.zero_grad()
    mmd = solver.macro_batch_mmd(batches, with_grad=True)
    (solver.mmd_weight * mmd).backward()
    assert torch.isfinite(mmd) and mmd.item() != 0., "no stratum of 2 rows would give exactly 0"
    assert sum(p.grad.abs().sum().item() for p in solver.model.encoder.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize('estimator', ['exact', 'bank'])
def test_conditional_updates_train(cpu_solver, estimator):
    """Two updates, the second completing the macro-batch of 2 (exact) / logging the full bank estimate."""
    solver = cpu_solver('mmd.num_batches=2', f'mmd.estimator={estimator}')
    encoder = [p.detach().clone() for p in solver.model.encoder.parameters()]
    batches = _batches(solver, 2)
    metrics = solver.run_stage('train', lambda: [solver.run_step(i, b, {}) for i, b in enumerate(batches)][-1])
    assert 'mmd' in metrics and torch.isfinite(torch.as_tensor(metrics['mmd']))
    assert any(not torch.equal(a, b) for a, b in zip(encoder, solver.model.encoder.parameters()))
