"""Solver registry: audiocraft's compression and musicgen solvers (compression via our torch-2.11
compat subclass) extended with ours."""
import typing as tp

import omegaconf


def _registry() -> tp.Dict[str, tp.Callable]:
    # Imported lazily: the solvers pull in all of audiocraft.
    from .compression import CompressionSolver
    from audiocraft.solvers.musicgen import MusicGenSolver
    from .compression_mmd import CompressionMMDSolver
    from .musicgen_mmd import MusicGenMMDSolver
    return {
        'compression': CompressionSolver,
        'musicgen': MusicGenSolver,
        'compression_mmd': CompressionMMDSolver,
        'musicgen_mmd': MusicGenMMDSolver,
    }


SOLVERS = ('compression', 'musicgen', 'compression_mmd', 'musicgen_mmd')


def get_solver(cfg: omegaconf.DictConfig):
    """Instantiate the solver named by `cfg.solver`."""
    registry = _registry()
    if cfg.solver not in registry:
        raise KeyError(f"Unknown solver {cfg.solver!r} (config key `solver`); known: {sorted(registry)}")
    return registry[cfg.solver](cfg)
