"""Solvers: audiocraft's, plus ours. `get_solver(cfg)` picks one by `cfg.solver`."""
from .builders import get_solver, SOLVERS  # noqa: F401
