"""Solvers: audiocraft's, plus ours. `get_solver(cfg)` picks one by `cfg.solver`."""
from .builders import COMPRESSION_SOLVERS, SOLVERS, get_solver, validate_config  # noqa: F401
