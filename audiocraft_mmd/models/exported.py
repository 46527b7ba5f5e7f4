"""Exported packages: a trained LM or codec as one weights-only file, in the layout of audiocraft's releases.

A package is `{'best_state': weights, 'xp.cfg': the XP's config as yaml text, 'version', 'exported': True}`
(a `//pretrained/NAME` codec is stored as the reference `{'pretrained': NAME, ...}`, as audiocraft's
`export_pretrained_compression_model` does). It holds only tensors, strings and numbers, so it loads with
`torch.load(weights_only=True)`. `python -m audiocraft_mmd.export` writes them; `MusicGenMMD` and the
packaged models (`packaged.py`) build them from solver checkpoints.
"""
from pathlib import Path
import typing as tp

import omegaconf

from ..compat.checkpoints import checkpoint_config, load_state, resolve_checkpoint
from ..environment import CHECKPOINT_NAME, CODEC_FILE, LM_FILE, PRETRAINED_PREFIX
from ..solver_kinds import COMPRESSION_SOLVERS, LM_CHECKPOINT_SOLVERS


class WrongCheckpointKind(ValueError):
    """A checkpoint was given where a checkpoint of another kind was expected."""


def _kind(cfg: omegaconf.DictConfig) -> str:
    solver = cfg.get('solver')
    if solver in LM_CHECKPOINT_SOLVERS:
        return 'MusicGen LM'
    if solver in COMPRESSION_SOLVERS:
        return 'compression model (codec)'
    return f'{solver!r} solver'


def _version() -> str:
    from audiocraft import __version__
    return __version__


def _exported_package(cfg: omegaconf.DictConfig, weights: dict) -> dict:
    return {
        'best_state': weights,
        'xp.cfg': omegaconf.OmegaConf.to_yaml(cfg),
        'version': _version(),
        'exported': True,
    }


def _read(ref: tp.Union[str, Path]) -> tp.Tuple[dict, Path]:
    """State of an exported file, or of the solver checkpoint `ref` points at (//sig/, folder, file)."""
    path = Path(str(ref)).expanduser()
    if path.is_file():
        return load_state(path), path
    if path.is_dir() and (path / LM_FILE).exists() and not (path / CHECKPOINT_NAME).exists():
        raise WrongCheckpointKind(f"{path} is an exported MusicGen folder, not a single checkpoint; "
                                  f"pass {path / LM_FILE} or {path / CODEC_FILE}")
    checkpoint = resolve_checkpoint(ref)
    return load_state(checkpoint), checkpoint


def best_weights(state: dict, path: Path) -> dict:
    """The model weights of an exported package or a solver checkpoint (its best state, FSDP or not)."""
    if state.get('exported'):
        return state['best_state']
    if state.get('fsdp_best_state'):
        return state['fsdp_best_state']['model']
    best = state.get('best_state') or {}
    if not best.get('model'):
        raise ValueError(f"{path} holds no best state (best_state.model): did the XP run a valid stage?")
    return best['model']


def lm_package(ref: tp.Union[str, Path]) -> tp.Tuple[dict, Path]:
    """Exported LM package (see module docstring) from `//sig/SIG`, an XP folder, a checkpoint or an
    exported `state_dict.bin`. Raises WrongCheckpointKind when `ref` is not a MusicGen LM."""
    state, path = _read(ref)
    cfg = checkpoint_config(state, path)
    if cfg.get('solver') not in LM_CHECKPOINT_SOLVERS:
        raise WrongCheckpointKind(f"{path} (from {str(ref)!r}) is a {_kind(cfg)} checkpoint, not a MusicGen LM "
                                  f"(its solver is {cfg.get('solver')!r}, expected one of {LM_CHECKPOINT_SOLVERS})")
    return _exported_package(cfg, best_weights(state, path)), path


def compression_package(ref: tp.Union[str, Path]) -> tp.Tuple[dict, tp.Union[Path, str]]:
    """Exported codec package from `//sig/SIG`, an XP folder, a checkpoint, an exported file, or
    `//pretrained/NAME` (stored as a reference, as audiocraft's `export_pretrained_compression_model`).
    Raises WrongCheckpointKind when `ref` is not a compression model."""
    ref = str(ref)
    if ref.startswith(PRETRAINED_PREFIX):
        name = ref[len(PRETRAINED_PREFIX):]
        return {'pretrained': name, 'exported': True, 'version': _version()}, ref
    state, path = _read(ref)
    if 'pretrained' in state and state.get('exported'):
        return state, path
    cfg = checkpoint_config(state, path)
    if cfg.get('solver') not in COMPRESSION_SOLVERS:
        raise WrongCheckpointKind(f"{path} (from {ref!r}) is a {_kind(cfg)} checkpoint, not a compression model "
                                  f"(its solver is {cfg.get('solver')!r}, expected one of {COMPRESSION_SOLVERS})")
    return _exported_package(cfg, best_weights(state, path)), path
