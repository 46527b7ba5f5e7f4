"""Train the runs of a plan as Dora XPs, resumably, a few at a time: the trunks first, then the
branches, each started from its seed's trunk (`continue_from=//sig/<trunk sig>`).

Each run is a `dora run` subprocess (its log goes to `<out>/logs/`), so a crash or a kill loses
at most the epoch in progress: Dora resumes an XP from its last checkpoint when the same
command runs again, and a run whose history already holds every epoch is not started at all.
Torch uses one thread per run (`num_threads` in config/config.yaml), so `jobs` = the number
of cores is the efficient setting on a CPU machine.
"""
import concurrent.futures
import json
import logging
import os
from pathlib import Path
import subprocess
import sys
import time
import typing as tp

from dora import XP
import omegaconf

from ..environment import CHECKPOINT_NAME, HISTORY_NAME, REPO_ROOT, SIG_PREFIX
from ..losses.mmd_config import ADDED_KEYS
from ..models.builders import quantizer_name
from .plan import CHOSEN_WEIGHT, Run

logger = logging.getLogger(__name__)


def xp_of(run: Run, common: tp.Sequence[str], extra: tp.Sequence[str] = ()) -> XP:
    """The Dora XP of a run (its folder and signature), without starting it."""
    from ..train import main
    return main.get_xp(run.argv(common, extra))


# (trunk XP folder) -> {kernel: factor}; see `kernel_factors.trunk_factors`.
FactorSource = tp.Callable[[Path], tp.Dict[str, float]]


def branch_extra(run: Run, trunk_sig: str, trunk_folder: Path, factors: FactorSource) -> tp.List[str]:
    """The overrides a branch gets from its trunk: `continue_from`, and a kernel branch's weight."""
    from .kernel_factors import kernel_weight
    extra = [f'continue_from={SIG_PREFIX}{trunk_sig}']
    if run.kernel is not None:
        extra.append(f'losses.mmd={kernel_weight(CHOSEN_WEIGHT, factors(trunk_folder)[run.kernel])}')
    return extra


def epochs_done(xp: XP) -> int:
    history = xp.folder / HISTORY_NAME
    return len(json.loads(history.read_text())) if history.exists() else 0


# The config blocks that decide what a run trains: a changed default in one of them makes an
# existing XP folder (same Dora signature, since Dora hashes the overrides only) a different model.
TRAINING_BLOCKS = ('losses', 'mmd', 'balancer', 'optim', 'compression_model', 'seanet', 'rvq', 'encodec', 'dac',
                   'dataset', 'sample_rate', 'codec_training')
# Keys added to a training block after XPs were trained, each with the value that does what those XPs did
# (an XP saved without the key, composed now with this value, is the same model: not a drift).
COMPATIBLE_ADDITIONS: tp.Dict[str, tp.Any] = {**{f'mmd.{key}': value for key, value in ADDED_KEYS.items()},
                                              'codec_training.quantizer_warmup': 0}
_ABSENT = object()


def saved_config(folder: Path) -> tp.Optional[omegaconf.DictConfig]:
    """The config an XP folder was trained with (None before its first run)."""
    path = folder / '.hydra' / 'config.yaml'
    return omegaconf.OmegaConf.load(path) if path.exists() else None


def config_drift(xp: XP) -> tp.List[str]:
    """Dotted keys whose value in the XP folder's saved config differs from the config composed now."""
    saved, now = saved_config(xp.folder), xp.cfg
    if saved is None:
        return []

    def flat(node: tp.Any, prefix: str) -> tp.Dict[str, tp.Any]:
        if isinstance(node, dict):
            return {k: v for key, sub in node.items() for k, v in flat(sub, f'{prefix}.{key}').items()}
        return {prefix: node}
    drift = []
    # the quantizer's own block (`pvq`) trains the model only when it is the quantizer in use
    quantizer = quantizer_name(now)
    for block in TRAINING_BLOCKS + ((quantizer,) if quantizer not in TRAINING_BLOCKS else ()):
        a = flat(omegaconf.OmegaConf.to_container(saved, resolve=False).get(block), block)
        b = flat(omegaconf.OmegaConf.to_container(now, resolve=False).get(block), block)
        drift += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not (
            k not in a and b.get(k) == COMPATIBLE_ADDITIONS.get(k, _ABSENT)))
    return drift


def is_trained(xp: XP) -> bool:
    return (xp.folder / CHECKPOINT_NAME).exists() and epochs_done(xp) >= xp.cfg.optim.epochs


def train(run: Run, xp: XP, argv: tp.Sequence[str], log_dir: Path) -> tp.Dict[str, tp.Any]:
    """Train (or resume) one run, whose XP is `xp` (`dora run ARGV`); returns its status, signature,
    log and duration."""
    status = {'run': run.name, 'sig': xp.sig, 'folder': str(xp.folder)}
    drift = config_drift(xp)
    if drift:
        logger.error("XP %s (%s) was trained with another config (a default changed since): %s. Move %s "
                     "away to retrain it.", xp.sig, run.name, ', '.join(drift), xp.folder)
        return {**status, 'status': 'failed', 'seconds': 0., 'log': f'config drift: {", ".join(drift)}'}
    if is_trained(xp):
        return {**status, 'status': 'done', 'seconds': 0.}
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f'{xp.sig}.log'
    command = [sys.executable, '-m', 'dora', 'run', *argv]
    begin = time.time()
    logger.info("training %s (XP %s, from epoch %d), log: %s", run.name, xp.sig, epochs_done(xp) + 1, log)
    with open(log, 'a') as out:
        # From the repository root: Dora finds our train entry there.
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(), cwd=REPO_ROOT)
    seconds = time.time() - begin
    if code != 0 or not is_trained(xp):
        logger.error("run %s failed (exit code %d) after %.0f s; see %s", run.name, code, seconds, log)
        return {**status, 'status': 'failed', 'seconds': seconds, 'log': str(log)}
    logger.info("trained %s in %.0f s", run.name, seconds)
    return {**status, 'status': 'trained', 'seconds': seconds, 'log': str(log)}


def _train_many(jobs: tp.Sequence[tp.Tuple[Run, XP, tp.List[str]]], log_dir: Path,
                workers: int) -> tp.List[tp.Dict[str, tp.Any]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        return list(pool.map(lambda job: train(*job, log_dir), jobs))


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
        return _train_many(jobs, log_dir, workers)
    return [{'run': run.name, 'sig': xp.sig, 'folder': str(xp.folder), 'seconds': 0.,
             'status': 'done' if is_trained(xp) else 'untrained'} for run, xp, _ in jobs]
