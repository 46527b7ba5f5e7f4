"""Solver registry: audiocraft's compression and musicgen solvers (compression via our torch-2.11
compat subclass) extended with ours, and the config check of each.

The registry names modules, imported on use: the solvers pull in all of audiocraft.
"""
import importlib
import typing as tp

import omegaconf

from ..config_validation import require
from ..solver_kinds import COMPRESSION_SOLVERS  # noqa: F401 (re-exported by solvers/__init__.py)

# solver name -> (module, class)
_REGISTRY: tp.Dict[str, tp.Tuple[str, str]] = {
    'compression': ('audiocraft_mmd.solvers.compression', 'CompressionSolver'),
    'musicgen': ('audiocraft.solvers.musicgen', 'MusicGenSolver'),
    'compression_mmd': ('audiocraft_mmd.solvers.compression_mmd', 'CompressionMMDSolver'),
    'musicgen_mmd': ('audiocraft_mmd.solvers.musicgen_mmd', 'MusicGenMMDSolver'),
}
# solver name -> (module, function) checking the config keys that solver owns
_VALIDATORS: tp.Dict[str, tp.Tuple[str, str]] = {
    'compression': ('audiocraft_mmd.solvers.compression', 'validate_config'),
    'compression_mmd': ('audiocraft_mmd.solvers.compression_mmd', 'validate_config'),
    'musicgen': ('audiocraft_mmd.solvers.musicgen_mmd', 'validate_config'),
    'musicgen_mmd': ('audiocraft_mmd.solvers.musicgen_mmd', 'validate_config'),
}
SOLVERS = tuple(_REGISTRY)  # COMPRESSION_SOLVERS + LM_SOLVERS (solver_kinds.py; tests/test_solver_kinds.py)


def _load(entry: tp.Tuple[str, str]) -> tp.Any:
    module, name = entry
    return getattr(importlib.import_module(module), name)


def validate_config(cfg: omegaconf.DictConfig) -> None:
    """Validate what the chosen solver needs; called by the train entry before building it."""
    require(cfg.get('solver') in _REGISTRY, 'solver', cfg.get('solver'), f"must be one of {SOLVERS}")
    if cfg.solver in _VALIDATORS:
        _load(_VALIDATORS[cfg.solver])(cfg)


def get_solver(cfg: omegaconf.DictConfig):
    """Instantiate the solver named by `cfg.solver`."""
    if cfg.solver not in _REGISTRY:
        raise KeyError(f"Unknown solver {cfg.solver!r} (config key `solver`); known: {sorted(_REGISTRY)}")
    return _load(_REGISTRY[cfg.solver])(cfg)
