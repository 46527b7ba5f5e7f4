"""Real `dora grid` launches on the one-node SLURM cluster of scripts/local_slurm.sh (marker `slurm`).

Run: bash scripts/local_slurm.sh start && .venv/bin/python -m pytest -m slurm tests/slurm   (.ci/run does this
after `make test`; ~4 min on 2 cores). Fails, with the reason, when the cluster is not up: nothing is skipped.

One grid (grids/mmd_weight_local.py: 2 XPs x 2 tasks, DDP over gloo through srun, device=cpu) carries the
checks, because every XP costs ~40 s of interpreter and data start-up on 2 cores:
- the table Dora prints shows the XPs pending/running, then done; checkpoints and history exist;
- re-running the grid while they run submits nothing (same job ids);
- XP 0 is interrupted three times, each a few updates after it resumed from the last: `scontrol requeue`, a `kill -9` of
  one task then `dora grid --retry`, and the time-limit signal (USR2, submitit requeues); each time it must resume
  from its last update checkpoint and lose at most `checkpoint.every_updates` updates;
- XP 1 must have the signature and metrics of `dora run -d --ddp_workers 2` on the same overrides;
- both ranks of each XP hold the same parameters (`rank_param_spread` == 0, logged when world_size > 1).
"""
import json
import os
import re
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

import pytest

from grids.mmd_weight_local import RECIPE, WEIGHTS

from conftest import REPO_ROOT, datasource_overrides, run_dora

pytestmark = pytest.mark.slurm
GRID = 'mmd_weight_local'
DORA = Path(sys.executable).parent / 'dora'
SHIM = REPO_ROOT / 'scripts' / 'local_slurm_bin'  # job states from slurmctld: the cluster runs no slurmdbd
ANSI = re.compile(r'\x1b\[[0-9;]*m')


@pytest.fixture(scope='module', autouse=True)
def cluster():
    proc = subprocess.run(['bash', str(REPO_ROOT / 'scripts' / 'local_slurm.sh'), 'status'],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"the local cluster is not up (bash scripts/local_slurm.sh start): {proc.stdout}"


def grid_env(dora_dir: Path, dataset: Path) -> dict:
    return dict(os.environ, AUDIOCRAFT_MMD_TEAM='local_slurm', AUDIOCRAFT_MMD_DATASET_ROOT=str(dataset),
                AUDIOCRAFT_MMD_DORA_DIR=str(dora_dir), PATH=f"{SHIM}:{os.environ['PATH']}", PYTHONUNBUFFERED='1')


def dora_grid(env: dict, *flags: str) -> str:
    """`dora grid mmd_weight_local --no_monitoring` (no git clone: the working tree is the code) -> its output."""
    proc = subprocess.run([str(DORA), 'grid', GRID, '--no_monitoring', '--no_git_save', *flags], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    out = ANSI.sub('', proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"dora grid {GRID} failed:\n{out[-3000:]}"
    return out


def table_states(out: str) -> dict:
    """sig -> state (PEN, RUN, DON, FAI, ...) from the rows of Dora's grid table."""
    return {m.group(2): m.group(1) for m in re.finditer(r'\b([A-Z]{3})\s+([0-9a-f]{8})\s+\d+', out)}


def squeue_ids() -> set:
    out = subprocess.run(['squeue', '-h', '-o', '%i'], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def job_id(xp_dir: Path) -> str:
    return str(json.loads((xp_dir / 'job.json').read_text())['job_id'])


def history(xp_dir: Path) -> list:
    path = xp_dir / 'history.json'
    return json.loads(path.read_text()) if path.exists() else []


def wait(predicate, timeout: float, what: str, step: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; squeue: {squeue_ids()}")


def release(job: str):
    """Start a requeued job now (slurm gives it a BeginTime ~2 min away)."""
    wait(lambda: 'PENDING' in subprocess.run(['scontrol', 'show', 'job', job], capture_output=True, text=True).stdout,
         60, f"job {job} to be pending again")
    subprocess.run(['scontrol', 'update', f'JobId={job}', 'StartTime=now'], check=True)


def kill_task(job: str, local_id: int) -> int:
    """kill -9 the process of task `local_id` of step 0 of `job` (`scontrol listpids`: PID JOBID STEPID LOCALID ...)."""
    def find():
        out = subprocess.run(['scontrol', 'listpids', job], capture_output=True, text=True).stdout
        rows = [line.split() for line in out.splitlines()[1:]]
        pids = [int(row[0]) for row in rows if len(row) >= 4 and row[2] == '0' and row[3] == str(local_id)]
        return pids[0] if pids else None
    pid = wait(find, 60, f"task {local_id} of job {job}", step=0.2)
    os.kill(pid, 9)
    return pid


def resumed_after(log: Path, offset: int, what: str):
    """Waits for the restarted run (log text after `offset`) to say where it resumed; returns (updates lost, (epoch,
    update) resumed from, offset of the line that says so). Lost: the furthest update the interrupted run logged in
    that epoch, minus the position."""
    found = wait(lambda: re.search(r'Resuming epoch (\d+) after update (\d+)', log.read_text()[offset:]), 240,
                 f"XP 0 to resume after {what}", step=0.2)
    text = log.read_text()
    restart = text.index('Distributed init: 0/2', offset)  # the interrupted run's log ends where the new one starts
    interrupted = text[text.rfind('Distributed init: 0/2', 0, restart):restart]
    epoch, update = int(found.group(1)), int(found.group(2))
    return max_update_logged(interrupted, epoch) - update, (epoch, update), offset + found.end()


def progressed(log: Path, offset: int, position: tp.Tuple[int, int], updates: int = 3) -> str:
    """Waits until the run that resumed at `position` (its log after `offset`) has done `updates` more updates (or
    reached the next epoch), so that the next interruption falls between checkpoints; returns the log then."""
    epoch, update = position

    def done() -> bool:
        text = log.read_text()[offset:]
        return max_update_logged(text, epoch) >= update + updates or max_update_logged(text, epoch + 1) > 0
    wait(done, 120, f"XP 0 to train {updates} updates past epoch {epoch}, update {update}", step=0.1)
    return log.read_text()


def max_update_logged(log: str, epoch: int) -> int:
    """Updates of `epoch` a solver log says are done: flashy prints `Train | Epoch E | k/N` once the step of
    0-based index k has run (the line is delayed by one fetch to carry that step's metrics), so k + 1 are done."""
    found = [int(k) + 1 for k in re.findall(rf'Train \| Epoch {epoch} \| (\d+)/\d+', ANSI.sub('', log))]
    return max(found, default=0)


def test_grid_on_local_slurm(music_dataset, tmp_path, record_property):
    dora_dir = tmp_path / 'outputs'
    env = grid_env(dora_dir, music_dataset)
    start = time.time()
    first = dora_grid(env)
    submitted = re.findall(r'Scheduled job (\d+) for sheep ([0-9a-f]{8})', first)
    assert len(submitted) == 2, f"expected 2 XPs submitted:\n{first[-3000:]}"
    sigs = [sig for _, sig in submitted]
    states = table_states(first)
    assert all(states.get(sig) in ('PEN', 'RUN') for sig in sigs), f"table right after submission:\n{first}"
    xp_dirs = [dora_dir / 'xps' / sig for sig in sigs]
    ids = [job_id(xp) for xp in xp_dirs]
    assert set(ids) <= squeue_ids()

    # XP 0: requeued while it trains epoch 1 (its update-2 checkpoint written), then one task killed (-9) a few
    # updates after it resumed (`dora grid --retry` resubmits the failed XP), then the time-limit signal a few
    # updates after that resume. Each time it must resume from its last checkpoint, not restart.
    xp0 = xp_dirs[0]
    log0 = xp0 / 'solver.log.0'
    wait(lambda: log0.exists() and max_update_logged(log0.read_text(), epoch=1) >= 3, 240, "XP 0's update 3",
         step=0.1)
    before = log0.read_text()
    subprocess.run(['scontrol', 'requeue', ids[0]], check=True)
    requeue_time = time.time()
    release(ids[0])  # slurm holds a requeued batch job ~2 min (BeginTime); an operator's `StartTime=now`
    requeue_lost, requeue_position, resumed_at = resumed_after(log0, len(before), "the requeue")
    assert 0 <= requeue_lost <= 2, f"requeue lost {requeue_lost} updates, checkpoint.every_updates=2"
    at_resume = progressed(log0, resumed_at, requeue_position)
    killed = kill_task(ids[0], local_id=1)
    wait(lambda: ids[0] not in squeue_ids(), 60, "XP 0's job to end after the kill")
    retry = dora_grid(env, '--retry')
    assert 'Scheduled job' in retry, f"`dora grid --retry` did not resubmit the killed XP:\n{retry[-2000:]}"
    ids[0] = job_id(xp0)
    kill_lost, kill_position, resumed_at = resumed_after(log0, len(at_resume), "the kill")
    assert 0 <= kill_lost <= 2, f"kill -9 lost {kill_lost} updates, checkpoint.every_updates=2"
    # The time-limit path: SLURM sends USR2 (`--signal=USR2@90` in the sbatch script) before the limit; submitit's
    # handler in rank 0 calls Dora's checkpoint hook and requeues the job itself (`scontrol requeue`).
    at_signal = progressed(log0, resumed_at, kill_position)
    subprocess.run(['scancel', '--signal=USR2', ids[0]], check=True)
    release(ids[0])
    signal_lost, signal_position, _ = resumed_after(log0, len(at_signal), "the time-limit signal")
    assert 0 <= signal_lost <= 2, f"USR2 (time limit) lost {signal_lost} updates, checkpoint.every_updates=2"

    # Re-running the grid while the XPs are queued or running submits nothing new.
    assert ids[0] in squeue_ids(), "XP 0, just resubmitted, should be queued or running here"
    again = dora_grid(env)
    assert 'Scheduled job' not in again, f"the second `dora grid` resubmitted:\n{again[-2000:]}"
    assert [job_id(xp) for xp in xp_dirs] == ids

    wait(lambda: not (set(ids) & squeue_ids()), 300, "both XPs to finish")
    wall = time.time() - start
    done = dora_grid(env)
    states = table_states(done)
    assert all(states.get(sig) == 'COM' for sig in sigs), f"final table (COMpleted expected):\n{done}"

    for xp in xp_dirs:
        assert (xp / 'checkpoint.th').exists(), f"{xp.name}: no checkpoint"
        hist = history(xp)
        assert len(hist) == RECIPE['optim.epochs'], f"{xp.name}: {len(hist)} epochs in history.json"
        for epoch in hist:
            assert epoch['train']['rank_param_spread'] == 0.0, f"{xp.name}: the ranks' parameters differ"
        for rank in (0, 1):
            log = (xp / f'solver.log.{rank}').read_text()
            assert f'Distributed init: {rank}/2' in log and 'from submitit' in log, f"{xp.name} rank {rank}"

    # Parity: the same overrides through `dora run -d --ddp_workers 2` give the same XP and the same metrics.
    parity_dir = tmp_path / 'parity'
    argv = [f'{key}={value}' for key, value in RECIPE.items()] + datasource_overrides(music_dataset)
    argv.append(f'losses.mmd={WEIGHTS[1]}')
    run_dora(['-d', '--ddp_workers', '2', *argv], parity_dir, timeout=240)
    local = parity_dir / 'xps' / sigs[1]
    assert local.exists(), f"`dora run -d` gave another signature than {sigs[1]}: {os.listdir(parity_dir / 'xps')}"
    diffs = metric_diffs(history(xp_dirs[1]), history(local))
    record_property('slurm_vs_local_max_rel_diff', max(diffs.values()))
    worst = {k: v for k, v in diffs.items() if v > 1e-4}
    assert not worst, f"metrics differ between the SLURM XP and `dora run -d`: {worst}"

    report = {'wall_s': round(wall, 1), 'requeue_after_s': round(requeue_time - start, 1), 'killed_pid': killed,
              'updates_lost_on_requeue': requeue_lost, 'updates_lost_on_kill': kill_lost,
              'updates_lost_on_signal': signal_lost, 'resumed_from_requeue': requeue_position,
              'resumed_from_kill': kill_position, 'resumed_from_signal': signal_position,
              'max_rel_diff': max(diffs.values()), 'diffs': diffs, 'first_table': first, 'table': done}
    (tmp_path / 'report.json').write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def metric_diffs(a: list, b: list) -> dict:
    """stage/metric/epoch -> relative difference between two Dora histories (same epochs, same stages)."""
    assert len(a) == len(b), f"{len(a)} vs {len(b)} epochs"
    out = {}
    for epoch, (ea, eb) in enumerate(zip(a, b), start=1):
        for stage in ea:
            for key, va in ea[stage].items():
                if key == 'duration' or not isinstance(va, (int, float)):
                    continue
                vb = eb[stage][key]
                out[f'{stage}/{key}/{epoch}'] = abs(va - vb) / max(abs(va), abs(vb), 1e-8)
    return out


def test_missing_partition_fails_at_submission(tmp_path, music_dataset):
    """sbatch refuses a partition the cluster lacks; `dora grid` must fail with that reason, not queue a job."""
    env = dict(grid_env(tmp_path / 'outputs', music_dataset), AUDIOCRAFT_MMD_PARTITION='no_such_partition')
    known = squeue_ids()
    proc = subprocess.run([str(DORA), 'grid', GRID, '--no_monitoring', '--no_git_save'], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    out = ANSI.sub('', proc.stdout + proc.stderr)
    assert proc.returncode != 0, f"dora grid accepted a missing partition:\n{out[-2000:]}"
    assert 'no_such_partition' in out and 'Invalid partition' in out, out[-2000:]
    assert squeue_ids() == known, "a job was queued on a missing partition"


def test_cancel_cancels_the_running_xps(tmp_path, music_dataset):
    """`dora grid ... --cancel` scancels the grid's queued/running jobs and the table says so."""
    env = grid_env(tmp_path / 'outputs', music_dataset)
    first = dora_grid(env)
    ids = [job for job, _ in re.findall(r'Scheduled job (\d+) for sheep ([0-9a-f]{8})', first)]
    assert len(ids) == 2 and set(ids) <= squeue_ids(), first[-2000:]
    cancelled = dora_grid(env, '--cancel')
    wait(lambda: not (set(ids) & squeue_ids()), 60, "the cancelled jobs to leave the queue")
    states = table_states(dora_grid(env, '--dry_run'))  # dry: show the states, resubmit nothing
    assert set(states.values()) == {'CAN'}, f"after --cancel: {states}\n{cancelled[-2000:]}"
