"""Train the runs of a plan as Dora XPs, resumably, a few at a time.

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

from ..environment import CHECKPOINT_NAME, HISTORY_NAME, REPO_ROOT
from .plan import Run

logger = logging.getLogger(__name__)


def xp_of(run: Run, common: tp.Sequence[str]) -> XP:
    """The Dora XP of a run (its folder and signature), without starting it."""
    from ..train import main
    return main.get_xp(run.argv(common))


def epochs_done(xp: XP) -> int:
    history = xp.folder / HISTORY_NAME
    return len(json.loads(history.read_text())) if history.exists() else 0


# The config blocks that decide what a run trains: a changed default in one of them makes an
# existing XP folder (same Dora signature, since Dora hashes the overrides only) a different model.
TRAINING_BLOCKS = ('losses', 'mmd', 'balancer', 'optim', 'seanet', 'rvq', 'encodec', 'dataset', 'sample_rate')


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
    for block in TRAINING_BLOCKS:
        a = flat(omegaconf.OmegaConf.to_container(saved, resolve=False).get(block), block)
        b = flat(omegaconf.OmegaConf.to_container(now, resolve=False).get(block), block)
        drift += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return drift


def is_trained(xp: XP) -> bool:
    return (xp.folder / CHECKPOINT_NAME).exists() and epochs_done(xp) >= xp.cfg.optim.epochs


def train(run: Run, xp: XP, common: tp.Sequence[str], log_dir: Path) -> tp.Dict[str, tp.Any]:
    """Train (or resume) one run, whose XP is `xp`; returns its status, signature, log and duration."""
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
    command = [sys.executable, '-m', 'dora', 'run', *run.argv(common)]
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


def train_all(runs: tp.Sequence[Run], common: tp.Sequence[str], log_dir: Path,
              jobs: int = 2) -> tp.List[tp.Dict[str, tp.Any]]:
    """Train every run, `jobs` at a time, in plan order; a failed run does not stop the others."""
    xps = [xp_of(run, common) for run in runs]  # hydra's config loading is not thread-safe: all first
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        return list(pool.map(lambda pair: train(*pair, common, log_dir), zip(runs, xps)))
