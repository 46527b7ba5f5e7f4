"""The sbatch script `dora grid mmd_weight_sweep` would submit on the GPU teams, built by Dora and submitit
themselves (Shepherd's executor, submitit's sbatch text) without a cluster: resources from the team file.

submitit's SlurmExecutor refuses to exist unless `srun` is on PATH (`SlurmExecutor.affinity`), although building the
script runs nothing. The test brings its own stand-ins first on PATH (as submitit's and Dora's own suites fake
the scheduler), so it neither needs nor reads the host's SLURM; the stand-ins fail and log if anything runs them.
"""
import os
from pathlib import Path
import re
import stat
import types

import pytest
from dora.explore import Herd, Launcher
from dora.shep import Shepherd

from audiocraft_mmd.train import main

# team -> what every XP of the sweep must ask for (8 GPUs = 8 tasks of one GPU each, one node).
EXPECTED = {
    'default': {'gres': 'gpu:8', 'ntasks-per-node': '8', 'nodes': '1', 'cpus-per-task': '10', 'mem': '320GB',
                'time': '3600', 'partition': 'debug', 'signal': 'USR2@90'},
    'example_slurm': {'gres': 'gpu:8', 'ntasks-per-node': '8', 'nodes': '1', 'cpus-per-task': '10',
                      'mem': '320GB', 'time': '3600', 'partition': 'mylab,learnlab', 'signal': 'USR2@90'},
}


def sbatch_scripts(grid, folder):
    """The sbatch text of each XP of `grids.<grid>`, as Dora's Shepherd would write it."""
    import importlib
    explorer = importlib.import_module(f'grids.{grid}').explorer
    herd = Herd()
    configs = []
    herd.add_sheep = lambda shepherd, argv, slurm, pool=None: configs.append(slurm)  # type: ignore[method-assign]
    explorer(Launcher(types.SimpleNamespace(main=main), main.get_slurm_config(), herd))
    shepherd = Shepherd(main)
    return [shepherd._get_submitit_executor('xp', folder, slurm)._make_submission_file_text('true', 'uid')
            for slurm in configs]


STAND_INS = ('srun', 'sbatch', 'sinfo', 'squeue', 'scancel', 'sacct')


@pytest.fixture
def slurm_stand_ins(tmp_path, monkeypatch) -> Path:
    """A folder of stand-in SLURM commands first on PATH; returns the log each call appends to."""
    folder, log = tmp_path / 'slurm_stand_ins', tmp_path / 'slurm_calls.log'
    folder.mkdir()
    for name in STAND_INS:
        tool = folder / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\necho "stand-in {name}: not a cluster" >&2\nexit 1\n')
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('PATH', f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


@pytest.mark.parametrize('team', sorted(EXPECTED))
def test_sweep_sbatch_script_fields(team, tmp_path, monkeypatch, slurm_stand_ins):
    monkeypatch.setenv('AUDIOCRAFT_MMD_TEAM', team)
    monkeypatch.setattr(main.dora, 'dir', tmp_path / 'outputs')
    scripts = sbatch_scripts('mmd_weight_sweep', tmp_path / 'submitit')
    assert len(scripts) == 9
    for script in scripts:
        fields = dict(re.findall(r'^#SBATCH --([\w-]+)=(\S+)$', script, flags=re.M))
        wrong = {key: (fields.get(key), value) for key, value in EXPECTED[team].items() if fields.get(key) != value}
        assert not wrong, f"team {team}: (sbatch, expected) {wrong}\n{script}"
        # one srun step runs the tasks (DDP ranks from submitit's SLURM environment)
        assert re.search(r'^srun .*--unbuffered', script, flags=re.M), f"no srun step:\n{script}"
    # building the scripts submitted nothing and asked the scheduler nothing
    assert not slurm_stand_ins.exists(), slurm_stand_ins.read_text()
