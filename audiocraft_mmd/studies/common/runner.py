"""Train Dora XPs resumably, a few at a time: the runner both studies share.

A run is anything with a `name` and an `argv(common, extra)` giving its `dora run` arguments (the codec study's
`plan.Run`, the LM study's `LMRun`). Each run is a `dora run` subprocess (its log goes to `<out>/logs/`), so a
crash or a kill loses at most the epoch in progress: Dora resumes an XP from its last checkpoint when the same
command runs again, and a run whose history already holds every epoch is not started at all. Torch uses one
thread per run (`num_threads` in config/config.yaml), so `jobs` = the number of cores is the efficient setting
on a CPU machine.
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

from ...environment import CHECKPOINT_NAME, HISTORY_NAME, REPO_ROOT
from ...losses.mmd_config import ADDED_KEYS
from ...models.builders import quantizer_name

logger = logging.getLogger(__name__)


def xp_of(run: tp.Any, common: tp.Sequence[str], extra: tp.Sequence[str] = ()) -> XP:
    """The Dora XP of a run (its folder and signature), without starting it."""
    from ...train import main
    return main.get_xp(run.argv(common, extra))


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


def train(run: tp.Any, xp: XP, argv: tp.Sequence[str], log_dir: Path) -> tp.Dict[str, tp.Any]:
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


def train_many(jobs: tp.Sequence[tp.Tuple[tp.Any, XP, tp.List[str]]], log_dir: Path,
               workers: int) -> tp.List[tp.Dict[str, tp.Any]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        return list(pool.map(lambda job: train(*job, log_dir), jobs))
