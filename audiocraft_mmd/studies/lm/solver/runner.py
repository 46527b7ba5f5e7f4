"""Train the LMs of the study as Dora XPs with the studies' runner (resumable, a few at once).

`audiocraft_mmd.studies.common.runner.train` takes the run's `dora run` arguments; `LMRun.argv` has the
codec runs' contract.
"""
import concurrent.futures
from pathlib import Path
import typing as tp

from ...common import runner
from .plan import LMRun


def _train(run: LMRun, xp: tp.Any, common: tp.Sequence[str], log_dir: Path) -> tp.Dict[str, tp.Any]:
    return runner.train(run, xp, run.argv(common), log_dir)  # type: ignore


def xp_of(run: LMRun, common: tp.Sequence[str]) -> tp.Any:
    return runner.xp_of(run, common)  # type: ignore


def train_lms(runs: tp.Sequence[LMRun], common: tp.Sequence[str], log_dir: Path, jobs: int = 2,
              train_missing: bool = True) -> tp.List[tp.Dict[str, tp.Any]]:
    """Train every LM, `jobs` at a time, flatten LMs first (the slow ones); statuses in plan order.
    With `train_missing` false nothing is trained: the statuses say which XPs exist."""
    xps = [xp_of(run, common) for run in runs]  # hydra's config loading is not thread-safe: all first
    if not train_missing:
        return [{'run': r.name, 'sig': x.sig, 'folder': str(x.folder), 'seconds': 0.,
                 'status': 'done' if runner.is_trained(x) else 'untrained'} for r, x in zip(runs, xps)]
    order = sorted(range(len(runs)), key=lambda i: runs[i].pattern != 'flatten')
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        done = dict(zip(order, pool.map(lambda i: _train(runs[i], xps[i], common, log_dir), order)))
    return [done[i] for i in range(len(runs))]
