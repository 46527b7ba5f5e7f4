"""`solver=compression/encodec_mmd_cpu mmd.shuffle=conditional` trains in-process: a few updates with both
estimators, the loss finite, its gradient on the encoder (issue #19)."""
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import datasource_overrides


@pytest.fixture(scope='module')
def tone_dataset(tmp_path_factory) -> Path:
    """Eight 3 s chords of random pitches (32 kHz) with manifests for every split: what the solver reads, in
    a second, where the session's rendered music takes minutes to build on a busy machine."""
    import soundfile as sf
    root = tmp_path_factory.mktemp('tones')
    g = torch.Generator().manual_seed(0)
    t = torch.arange(3 * 32000) / 32000
    lines = []
    for i in range(8):
        pitches = 110. * 2 ** (torch.randint(0, 36, (3,), generator=g) / 12)
        wave = 0.2 * torch.sin(2 * math.pi * pitches[:, None] * t).sum(0, keepdim=True)
        path = root / f'tone{i}.wav'
        sf.write(str(path), wave[0].numpy(), 32000, subtype='PCM_16', format='WAV')
        lines.append(json.dumps({'path': str(path), 'duration': 3.0, 'sample_rate': 32000, 'amplitude': None,
                                 'weight': None, 'info_path': None}))
    for split in ('train', 'valid', 'evaluate', 'generate'):
        (root / 'egs' / split).mkdir(parents=True)
        (root / 'egs' / split / 'data.jsonl').write_text(''.join(line + '\n' for line in lines))
    return root


@pytest.fixture
def cpu_solver(tone_dataset, dora_dir, monkeypatch):
    """The solver `dora run solver=compression/encodec_mmd_cpu mmd.shuffle=conditional ...` builds."""
    from audiocraft_mmd.train import build_solver_in_process, main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)

    def _make(*overrides):
        return build_solver_in_process(['solver=compression/encodec_mmd_cpu', 'device=cpu', 'mmd.shuffle=conditional',
                                        'dataset.num_workers=0', *datasource_overrides(tone_dataset), *overrides])
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
