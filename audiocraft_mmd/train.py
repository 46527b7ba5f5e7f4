"""Dora/hydra entry point of audiocraft-mmd: `dora run solver=compression/encodec_mmd_debug device=cpu`.

Same shape as `audiocraft.train`, but with our `config/` tree (audiocraft's wheel ships none),
our solver registry (audiocraft's solvers + ours), our Dora output folder and our `grids/`.
Dora finds this module from the repository root (the only package there with a `train.py`),
or through DORA_PACKAGE=audiocraft_mmd.
"""
import logging
import multiprocessing
import os
import sys
import typing as tp

from dora import git_save, hydra_main, XP
import flashy
import hydra
import omegaconf

from . import environment

logger = logging.getLogger(__name__)
environment.point_audiocraft_at_our_teams()


def resolve_config_dset_paths(cfg: omegaconf.DictConfig) -> None:
    """Make manifest paths absolute, relative to the repository (or its Dora git_save clone)."""
    for key, value in cfg.datasource.items():
        if isinstance(value, str):
            cfg.datasource[key] = git_save.to_absolute_path(value)


def per_rank_batch_sizes(cfg: omegaconf.DictConfig) -> None:
    """Config batch sizes are global; each rank gets its share (as in audiocraft)."""
    world = flashy.distrib.world_size()
    for node in [cfg.dataset] + [cfg.dataset[s] for s in ('train', 'valid', 'evaluate', 'generate')
                                 if s in cfg.dataset]:
        if node.get('batch_size') is None:
            continue
        if node.batch_size % world:
            raise ValueError(f"dataset batch_size={node.batch_size} is not divisible by the world size {world}")
        node.batch_size //= world


def get_solver(cfg: omegaconf.DictConfig):
    from .solvers import get_solver as _get_solver, validate_config
    validate_config(cfg)
    per_rank_batch_sizes(cfg)
    resolve_config_dset_paths(cfg)
    return _get_solver(cfg)


def get_solver_from_xp(xp: XP, override_cfg: tp.Optional[dict] = None, restore: bool = True,
                       load_best: bool = True, ignore_state_keys: tp.Sequence[str] = ()):
    """Solver of a Dora XP (e.g. in a notebook), restored from its last checkpoint."""
    cfg = xp.cfg
    if override_cfg is not None:
        cfg = omegaconf.OmegaConf.merge(cfg, omegaconf.DictConfig(override_cfg))
    try:
        with xp.enter():
            solver = get_solver(cfg)
            if restore:
                solver.restore(load_best=load_best, ignore_state_keys=list(ignore_state_keys))
        return solver
    finally:
        hydra.core.global_hydra.GlobalHydra.instance().clear()


def get_solver_from_sig(sig: str, *args, **kwargs):
    return get_solver_from_xp(main.get_xp_from_sig(sig), *args, **kwargs)


def init_seed_and_system(cfg: omegaconf.DictConfig) -> None:
    import random
    import numpy as np
    import torch
    from audiocraft.modules.transformer import set_efficient_attention_backend

    multiprocessing.set_start_method(cfg.mp_start_method, force=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    os.environ['MKL_NUM_THREADS'] = str(cfg.num_threads)
    os.environ['OMP_NUM_THREADS'] = str(cfg.num_threads)
    set_efficient_attention_backend(cfg.efficient_attention_backend)


@hydra_main(config_path='../config', config_name='config', version_base='1.1')
def main(cfg):
    init_seed_and_system(cfg)
    log_name = '%s.log.{rank}' % cfg.execute_only if cfg.execute_only else 'solver.log.{rank}'
    flashy.setup_logging(level=str(cfg.logging.level).upper(), log_name=log_name)
    # audiocraft calls init() whose default backend is nccl, which dora refuses without CUDA:
    # multi-process runs on CPU (`dora run -d --ddp_workers 2 device=cpu`) need gloo.
    flashy.distrib.init(backend='nccl' if cfg.device.startswith('cuda') else 'gloo')
    solver = get_solver(cfg)  # its own config checks first: they need no data
    if cfg.show:
        solver.show()
        return
    from .data.manifest_check import check_datasource
    check_datasource(cfg)  # once per run, before any stage reads data (not when a solver is only loaded)
    if cfg.execute_only:
        if not (cfg.execute_inplace or cfg.continue_from is not None):
            raise ValueError("execute_only needs continue_from=<//sig/SIG or path> (or execute_inplace=true)")
        solver.restore(replay_metrics=False)
        solver.run_one_stage(cfg.execute_only)
        return
    return solver.run()


def build_solver_in_process(argv: tp.Sequence[str], seed: int = 0):
    """The solver `dora run ARGV` builds, built in this process (benchmarks, tests): torch seeded with
    `seed`, and `solver.rng` set, the generator audiocraft's train loop creates (it draws whether the
    adversaries train a step), so that `run_step` can be called directly."""
    import torch
    xp = main.get_xp(list(argv))
    torch.manual_seed(seed)
    with xp.enter():
        solver = get_solver(xp.cfg)
    solver.rng = torch.Generator().manual_seed(1234)
    return solver


main.dora.dir = environment.dora_dir()
main.dora.grid_package = 'grids'  # top-level grids/ of the repository (dora puts the cwd on sys.path)
main._base_cfg.slurm = omegaconf.OmegaConf.merge(main._base_cfg.slurm, {'partition': environment.slurm_partitions()})

if main.dora.shared is not None and not os.access(main.dora.shared, os.R_OK):
    print("No read permission on dora.shared folder, ignoring it.", file=sys.stderr)
    main.dora.shared = None

if __name__ == '__main__':
    main()
