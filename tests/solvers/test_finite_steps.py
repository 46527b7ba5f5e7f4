"""Non-finite steps are never applied: the gradient hook refuses them, a skipped step names its files, and a run on
files with NaN inside stops past `finite_steps.max_skipped` with only finite checkpoints."""
import json
import re
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft_mmd.solvers.finite_steps import BatchSources, NonFiniteStep, refuse_nonfinite_gradients
from conftest import run_dora

RATE = 32000


def test_a_nonfinite_gradient_is_refused_before_the_update():
    layer = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(layer.parameters())
    optimizer.register_step_pre_hook(refuse_nonfinite_gradients)
    before = [p.detach().clone() for p in layer.parameters()]
    layer(torch.tensor([[1., float('nan'), 0.]])).sum().backward()
    with pytest.raises(NonFiniteStep):
        optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    optimizer.zero_grad()
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # a finite one goes through
    assert not all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_batch_sources_name_the_nonfinite_item_and_its_time():
    meta = [types.SimpleNamespace(meta=types.SimpleNamespace(path=f'/music/{name}.wav'), seek_time=2.0,
                                  sample_rate=RATE) for name in ('clean', 'bad')]
    batch = torch.zeros(2, 1, RATE)
    batch[1, 0, RATE // 4:] = float('nan')
    sources = BatchSources([(batch, meta)])
    assert list(sources) == [batch]
    text = sources.describe(batch)
    assert text.startswith('1 of 2 items non-finite')
    assert '/music/bad.wav NON-FINITE at 2.25 s' in text and '/music/clean.wav from 2.00 s' in text
    assert 'unknown' in sources.describe(batch.clone())  # not the loader's last batch: no guess


def write_manifests(root):
    """8 clean songs and 2 float WAVs with NaN from 1.5 s to 4.5 s, all in train; valid/evaluate/generate clean.
    A 1 s segment of a bad file overlaps its NaN for seeks in (0.5, 4.5) s of [0, 5.5]: an item is bad with
    probability 2/10 * 4/5.5 = 0.15, a batch of 4 holds one with probability 0.47, so 40 updates skip ~19 steps
    (fewer than 4 with probability < 1e-4) and apply the others."""
    rng = np.random.default_rng(0)
    clean, bad = [], []
    for i in range(8):
        clean.append(root / f'song{i}.wav')
        sf.write(clean[-1], 0.1 * rng.standard_normal(6 * RATE), RATE, subtype='PCM_16')
    for i in range(2):
        wav = 0.1 * rng.standard_normal(6 * RATE)
        wav[int(1.5 * RATE):int(4.5 * RATE)] = np.nan
        bad.append(root / f'nan_inside{i}.wav')
        sf.write(bad[-1], wav, RATE, subtype='FLOAT')
    splits = {'train': clean + bad, 'valid': clean[:1], 'evaluate': clean[1:2], 'generate': clean[2:]}
    for split, paths in splits.items():
        (root / split).mkdir()
        lines = [json.dumps({'path': str(p), 'duration': 6.0, 'sample_rate': RATE}) for p in paths]
        (root / split / 'data.jsonl').write_text('\n'.join(lines) + '\n')
    return bad


@pytest.mark.slow
def test_training_on_nan_files_skips_names_and_stops_with_finite_checkpoints(tmp_path, dora_dir):
    bad = write_manifests(tmp_path)
    args = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'optim.epochs=1', 'optim.updates_per_epoch=40',
            'dataset.batch_size=4', 'mmd.num_batches=2', 'mmd.valid_batches=1', 'checkpoint.every_updates=2',
            'finite_steps.max_skipped=3', 'manifest_check.max_bad_fraction=0.5'] + \
        [f'datasource.{split}={tmp_path / split}' for split in ('train', 'valid', 'evaluate', 'generate')]
    proc = run_dora(args, dora_dir, timeout=600, check=False)
    log = proc.stderr
    assert proc.returncode != 0, "the run must stop past finite_steps.max_skipped"
    # The start-up check names the files (it lets them through here: max_bad_fraction=0.5).
    assert all(f'{p}: non-finite samples (NaN/inf) at 1.50-4.50 s' in log for p in bad)
    skips = re.findall(r'Skipped train step (\d+) of epoch 1, not applied: ([^;]*);', log)
    assert len(skips) == 4, log[-3000:]
    assert 'NonFiniteTraining: 4 train steps skipped' in log
    named = re.findall(r'(\S+nan_inside\d\.wav) NON-FINITE at (\d+\.\d+) s', log)
    assert named and {path for path, _ in named} <= {str(p) for p in bad}
    assert all(1.5 <= float(t) <= 4.5 for _, t in named)
    (xp,) = list(dora_dir.glob('xps/*'))
    checkpoints = list(xp.glob('checkpoint*.th'))
    assert checkpoints, "no checkpoint written before the stop"
    first_skip = log.index('Skipped train step')
    assert 'Model hash' in log[first_skip:log.index('NonFiniteTraining')], "no checkpoint written after a skip"
    hashes = re.findall(r'Model hash: (\w+)', log)
    assert len(set(hashes)) >= 2, "the finite steps between the skipped ones must be applied"
    for path in checkpoints:
        state = torch.load(path, map_location='cpu', weights_only=True)
        for name, tensor in state['model'].items():
            assert not tensor.is_floating_point() or torch.isfinite(tensor).all(), f'{path}: {name}'
