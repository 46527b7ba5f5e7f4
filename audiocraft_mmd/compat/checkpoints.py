"""Checkpoints that load with torch's safe default, and a loader of ours for solver checkpoints.

What it replaces, and why:

1. Since torch 2.6, `torch.load` defaults to `weights_only=True`. flashy stores the experiment
   config (`xp.cfg`) in every solver checkpoint as an omegaconf `DictConfig`, which the safe
   unpickler refuses, so audiocraft's resume (`audiocraft.utils.checkpoint.load_checkpoint`),
   `CompressionSolver.model_from_checkpoint` and `export_encodec` fail on checkpoints written
   by audiocraft's solvers. `WeightsOnlyCheckpointMixin` makes our solvers write `xp.cfg` as a
   plain container (dicts, lists, strings; interpolations kept), and the weight EMA's state
   (`optim.ema.use`, a `defaultdict` in audiocraft) as plain dicts, so those checkpoints load with
   `weights_only=True` everywhere, audiocraft's own resume included.
2. `audiocraft.utils.checkpoint.resolve_checkpoint_path('//sig/SIG')` imports `audiocraft.train`,
   whose hydra decorator needs a `config/` folder beside site-packages that audiocraft's wheel
   does not ship, so every `//sig/` reference fails. `resolve_checkpoint` resolves it against
   our Dora folder (`audiocraft_mmd.environment.dora_dir()`).

Loading policy: everything loads with `weights_only=True` first. Only a solver checkpoint inside
our own Dora folder (written by a solver on this machine, e.g. an older audiocraft solver) may be
retried with `weights_only=False`, explicitly; files from anywhere else never are.
"""
import logging
from pathlib import Path
import pickle
import typing as tp

import omegaconf
import torch

from .. import environment

logger = logging.getLogger(__name__)


class WeightsOnlyCheckpointMixin:
    """Solver mixin: store `xp.cfg` as a plain container so checkpoints load with weights_only=True."""

    def state_dict(self):  # type: ignore[override]
        state = super().state_dict()  # type: ignore[misc]
        cfg = state.get('xp.cfg')
        if isinstance(cfg, omegaconf.DictConfig):
            state['xp.cfg'] = omegaconf.OmegaConf.to_container(cfg, resolve=False)
        ema = state.get('ema')
        if isinstance(ema, dict) and isinstance(ema.get('state'), dict):
            # audiocraft's ModuleDictEMA keeps a defaultdict, which the safe unpickler refuses; its
            # load_state_dict copies entry by entry, so plain dicts restore it alike.
            state['ema'] = {**ema, 'state': {name: dict(tensors) for name, tensors in ema['state'].items()}}
        return state


def resolve_checkpoint(ref: tp.Union[str, Path]) -> Path:
    """Path of a solver checkpoint from `//sig/SIG`, an XP folder or a checkpoint file."""
    ref = str(ref)
    path = environment.xp_folder(ref)
    if ref.startswith(environment.SIG_PREFIX) and not path.exists():
        raise FileNotFoundError(f"No XP {path.name!r} in the Dora folder {environment.dora_dir()} (from {ref!r}); "
                                "set AUDIOCRAFT_MMD_DORA_DIR if it lives elsewhere")
    if path.is_dir():
        path = path / environment.CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"Checkpoint not found: {path} (from {ref!r})")
    return path


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def load_state(path: tp.Union[str, Path]) -> dict:
    """torch.load a checkpoint or exported file with the loading policy of this module."""
    path = Path(path)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _is_inside(path, environment.dora_dir()):
            raise RuntimeError(f"{path} holds Python objects that torch will not load safely (weights_only=True). "
                               "Only checkpoints inside our Dora folder are trusted; export the model "
                               "(`python -m audiocraft_mmd.export`) or load it yourself if you trust the file."
                               ) from exc
        logger.info("Loading trusted solver checkpoint %s with weights_only=False", path)
        return torch.load(path, map_location='cpu', weights_only=False)


def checkpoint_config(state: dict, path: tp.Union[str, Path]) -> omegaconf.DictConfig:
    """The experiment config stored in a solver checkpoint, as a DictConfig."""
    if 'xp.cfg' not in state:
        raise ValueError(f"{path} is not a solver checkpoint (no 'xp.cfg'; keys: {sorted(state)[:8]})")
    cfg = state['xp.cfg']
    if isinstance(cfg, str):  # exported files store it as yaml text
        return omegaconf.OmegaConf.create(cfg)
    return omegaconf.OmegaConf.create(cfg) if not isinstance(cfg, omegaconf.DictConfig) else cfg
