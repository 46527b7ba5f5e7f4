"""Train the runs of the codec plan: the trunks first, then the branches, each started from its seed's trunk
(`continue_from=//sig/<trunk sig>`), with the shared Dora runner (`studies.common.runner`)."""
import logging
from pathlib import Path
import typing as tp

from dora import XP

from ...environment import CHECKPOINT_NAME, SIG_PREFIX
from ..common.runner import is_trained, train_many, xp_of
from ..common.settings import CHOSEN_WEIGHT
from .plan import Run

logger = logging.getLogger(__name__)

# (trunk XP folder) -> {kernel: factor}; see `kernel_factors.trunk_factors`.
FactorSource = tp.Callable[[Path], tp.Dict[str, float]]


def branch_extra(run: Run, trunk_sig: str, trunk_folder: Path, factors: FactorSource) -> tp.List[str]:
    """The overrides a branch gets from its trunk: `continue_from`, and a kernel branch's weight."""
    from .kernel_factors import kernel_weight
    extra = [f'continue_from={SIG_PREFIX}{trunk_sig}']
    if run.kernel is not None:
        extra.append(f'losses.mmd={kernel_weight(CHOSEN_WEIGHT, factors(trunk_folder)[run.kernel])}')
    return extra


def resolve_branches(runs: tp.Sequence[Run], trunks: tp.Mapping[tp.Tuple[str, int], tp.Dict[str, tp.Any]],
                     common: tp.Sequence[str],
                     factors: FactorSource) -> tp.List[tp.Tuple[Run, tp.Optional[XP], tp.List[str], str]]:
    """(run, XP, argv, why not) of each branch: XP None with a reason when its trunk has no checkpoint
    or its kernel factor cannot be measured. `trunks`: trunk key (`Run.trunk_key`) -> the trunk's status."""
    resolved = []
    for run in runs:
        trunk = trunks[run.trunk_key]
        folder = Path(trunk['folder'])
        if trunk['status'] == 'failed' or not (folder / CHECKPOINT_NAME).exists():
            resolved.append((run, None, [], f"trunk {trunk['sig']} not trained"))
            continue
        try:
            extra = branch_extra(run, trunk['sig'], folder, factors)
        except Exception as exc:  # a factor measurement error fails this branch, not the reproduction
            logger.exception("kernel factor for %s failed", run.name)
            resolved.append((run, None, [], f"kernel factor: {exc}"))
            continue
        resolved.append((run, xp_of(run, common, extra), run.argv(common, extra), ''))
    return resolved


def train_all(runs: tp.Sequence[Run], common: tp.Sequence[str], log_dir: Path, factors: FactorSource,
              jobs: int = 2, train_missing: bool = True) -> tp.List[tp.Dict[str, tp.Any]]:
    """Train every trunk, then every branch, `jobs` at a time, in plan order; a failed run does not
    stop the others (a failed trunk fails its branches). With `train_missing` false nothing is
    trained: the statuses say which XPs exist (for `--skip-training`). Statuses come in plan order."""
    trunks = [run for run in runs if run.is_trunk]
    branches = [run for run in runs if not run.is_trunk]
    missing = {run.trunk_key for run in branches} - {run.trunk_key for run in trunks}
    assert not missing, f"branches of (solver, seed) {sorted(missing)} have no trunk in the plan"
    # hydra's config loading is not thread-safe: every XP is composed before the pool starts.
    trunk_jobs = [(run, xp_of(run, common), run.argv(common)) for run in trunks]
    trunk_statuses = _run_or_report(trunk_jobs, log_dir, jobs, train_missing)
    by_key = {run.trunk_key: status for run, status in zip(trunks, trunk_statuses)}
    resolved = resolve_branches(branches, by_key, common, factors)
    ready = [(run, xp, argv) for run, xp, argv, _ in resolved if xp is not None]
    done = iter(_run_or_report(ready, log_dir, jobs, train_missing))
    statuses = {id(run): status for run, status in zip(trunks, trunk_statuses)}
    for run, xp, _, why in resolved:
        statuses[id(run)] = next(done) if xp is not None else {
            'run': run.name, 'sig': None, 'folder': None, 'status': 'failed' if train_missing else 'untrained',
            'seconds': 0., 'log': why}
    for run in branches:
        statuses[id(run)]['trunk'] = by_key[run.trunk_key]['sig']
    for run in runs:
        statuses[id(run)]['stage'] = 'trunk' if run.is_trunk else 'branch'
    return [statuses[id(run)] for run in runs]


def _run_or_report(jobs: tp.Sequence[tp.Tuple[Run, XP, tp.List[str]]], log_dir: Path, workers: int,
                   train_missing: bool) -> tp.List[tp.Dict[str, tp.Any]]:
    if train_missing:
        return train_many(jobs, log_dir, workers)
    return [{'run': run.name, 'sig': xp.sig, 'folder': str(xp.folder), 'seconds': 0.,
             'status': 'done' if is_trained(xp) else 'untrained'} for run, xp, _ in jobs]
