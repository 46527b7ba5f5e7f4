"""End to end through Dora: train on real music, kill, resume, load the model by signature."""
import json
import os
import re
from pathlib import Path
import signal
import subprocess
import sys
import time

import torch

from conftest import REPO_ROOT, datasource_overrides, run_dora

ARGS = ['solver=compression/debug', 'device=cpu', 'optim.epochs=2', 'optim.updates_per_epoch=6',
        'evaluate.every=2', 'generate.every=2']


def _train_until_first_checkpoint(args, dora_dir: Path, timeout: float = 240) -> None:
    env = dict(os.environ, AUDIOCRAFT_MMD_DORA_DIR=str(dora_dir))
    dora = str(Path(sys.executable).parent / 'dora')
    proc = subprocess.Popen([dora, 'run', *args], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while not list(dora_dir.glob('xps/*/checkpoint.th')):
            assert proc.poll() is None, f"dora run exited ({proc.returncode}) before writing a checkpoint"
            assert time.time() < deadline, "no checkpoint written in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # killed mid-run, as a preempted job would be
        proc.wait()


def test_kill_resume_and_load_by_signature(music_dataset, dora_dir, monkeypatch):
    args = ARGS + datasource_overrides(music_dataset)
    _train_until_first_checkpoint(args, dora_dir)
    (xp_dir,) = list(dora_dir.glob('xps/*'))
    first = json.loads((xp_dir / 'history.json').read_text())
    assert len(first) == 1  # one finished epoch before the kill

    proc = run_dora(args, dora_dir)  # identical command: resumes the same XP
    history = json.loads((xp_dir / 'history.json').read_text())
    assert len(history) == 2 and history[0] == first[0], "resumed run must keep epoch 1 and add epoch 2"
    # flashy replays the summaries of restored epochs; progress lines only come from real training.
    assert not re.search(r'Train \| Epoch 1 \| \d+/', proc.stderr), "epoch 1 was retrained instead of resumed"
    assert re.search(r'Train \| Epoch 2 \| \d+/', proc.stderr)
    assert 'evaluate' in history[1] and 'tc' in history[1]['evaluate']

    # Checkpoints load with torch's safe default, and by signature.
    state = torch.load(xp_dir / 'checkpoint.th', map_location='cpu', weights_only=True)
    assert state['xp.cfg']['solver'] == 'compression_mmd'
    from audiocraft_mmd.solvers.compression import CompressionSolver
    model = CompressionSolver.model_from_checkpoint(f'//sig/{xp_dir.name}')
    wav = torch.randn(1, 1, 32000)
    codes, scale = model.encode(wav)
    assert codes.shape == (1, 4, 50)
    out = model.decode(codes, scale)
    assert out.shape == (1, 1, 32000) and torch.isfinite(out).all()


def test_dora_finds_package_by_env_from_anywhere(tmp_path):
    env = dict(os.environ, DORA_PACKAGE='audiocraft_mmd', AUDIOCRAFT_MMD_DORA_DIR=str(tmp_path / 'outputs'))
    dora = str(Path(sys.executable).parent / 'dora')
    proc = subprocess.run([dora, 'info', 'solver=compression/debug', 'device=cpu'], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'compression/debug' in proc.stdout + proc.stderr
