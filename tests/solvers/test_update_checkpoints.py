"""checkpoint.every_updates: mid-epoch checkpoints carry their position, a restored solver steps over the updates
already done and the epoch still counts updates_per_epoch updates. The mixin runs over a minimal solver-shaped
base (the real solver on a live scheduler: tests/slurm/test_local_slurm.py)."""
import copy
import logging

import omegaconf
import pytest

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.solvers.update_checkpoints import PROGRESS_KEY, UpdateCheckpointMixin, validate_config


class Base:
    """The parts of a flashy/audiocraft solver the mixin relies on: steps change the weights, checkpoints copy."""
    def __init__(self, every, updates=6):
        self.cfg = omegaconf.OmegaConf.create({'checkpoint': {'every_updates': every}})
        self.train_updates_per_epoch = updates
        self.is_training = True
        self.epoch = 1
        self.weights = 0
        self.saved = []
        self.logger = logging.getLogger('test')

    def run_step(self, idx, batch, metrics):
        self.weights += 1
        return {'loss': 1.}

    def state_dict(self):
        return {'weights': self.weights, 'epoch': self.epoch}

    def load_state_dict(self, state):
        self.weights, self.epoch = state['weights'], state['epoch']

    def save_checkpoints(self):
        self.saved.append(copy.deepcopy(self.state_dict()))

    def restore(self):
        self.load_state_dict(copy.deepcopy(self.saved[-1]))
        return True


class Solver(UpdateCheckpointMixin, Base):
    pass


def test_interrupted_epoch_resumes_after_last_checkpoint():
    solver = Solver(every=2)
    for idx in range(5):  # killed during update 6
        solver.run_step(idx, None, {})
    assert [state[PROGRESS_KEY] for state in solver.saved] == [(1, 2), (1, 4)]
    resumed = Solver(every=2)
    resumed.saved = solver.saved
    resumed.restore()
    assert resumed._skip_updates == 4 and resumed.weights == 4
    for idx in range(6):
        resumed.run_step(idx, None, {})
    assert resumed.weights == 6, "the epoch must count updates_per_epoch updates in all"
    assert resumed._progress is None and resumed._skip_updates == 0, "the epoch checkpoint is a whole epoch"


def test_checkpoint_of_another_epoch_does_not_skip():
    solver = Solver(every=2)
    solver.saved = [{'weights': 3, 'epoch': 2, PROGRESS_KEY: (1, 2)}]
    solver.restore()
    assert solver._skip_updates == 0


def test_no_cadence_no_mid_epoch_checkpoint():
    solver = Solver(every=None)
    for idx in range(6):
        solver.run_step(idx, None, {})
    assert solver.saved == []


@pytest.mark.parametrize('every,macro', [(0, 1), (3, 2), (1.5, 1)])
def test_bad_cadence_is_a_config_error(every, macro):
    cfg = omegaconf.OmegaConf.create({'checkpoint': {'every_updates': every}, 'mmd': {'num_batches': macro}})
    with pytest.raises(ConfigError, match='checkpoint.every_updates'):
        validate_config(cfg)


def test_real_solver_steps_over_the_mmd_of_resumed_updates(music_dataset, tmp_path):
    """CompressionMMDSolver adds the macro-batch MMD and its backward in its own `run_step`, before the mixin's:
    a resumed epoch must not compute them for the updates it steps over (their gradients would pile up in `.grad`
    until the first real step). 4 updates, macro-batches of 2, resumed after update 2: one MMD, two optimizer
    steps."""
    from conftest import datasource_overrides
    from audiocraft_mmd.train import build_solver_in_process, main
    argv = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'losses.mmd=1000', 'optim.epochs=1',
            'optim.updates_per_epoch=4', 'mmd.num_batches=2', 'checkpoint.every_updates=2',
            *datasource_overrides(music_dataset)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(main.dora, 'dir', tmp_path / 'outputs')
        solver = build_solver_in_process(argv)
        solver._skip_updates = 2
        mmd_calls, steps = [], []
        macro_batch_mmd, optimizer_step = solver.macro_batch_mmd, solver.optimizer.step
        patch.setattr(solver, 'macro_batch_mmd', lambda *a, **k: mmd_calls.append(1) or macro_batch_mmd(*a, **k))
        patch.setattr(solver.optimizer, 'step', lambda *a, **k: steps.append(1) or optimizer_step(*a, **k))
        solver.run_stage('train', solver.train)
    assert len(mmd_calls) == 1, f"{len(mmd_calls)} MMD macro-batches computed, 1 expected (updates 3-4)"
    assert len(steps) == 2, f"{len(steps)} optimizer steps, 2 expected (updates 3 and 4)"
    assert solver._skip_updates == 0 and solver._progress is None


def test_a_save_killed_midway_leaves_the_last_checkpoint_whole(tmp_path, monkeypatch):
    """A preemption can land inside a mid-epoch save: audiocraft's save_checkpoint (what `save_checkpoints` calls)
    writes to a temporary file renamed over the checkpoint, so a write that dies halfway leaves the previous one."""
    import torch
    from audiocraft.utils import checkpoint
    path = tmp_path / 'checkpoint.th'
    checkpoint.save_checkpoint({'update': 2, 'weights': torch.ones(1000)}, path)
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b'\x80\x02half a pickle')
        raise KeyboardInterrupt("SIGTERM/SIGKILL during the write")
    monkeypatch.setattr(torch, 'save', dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint({'update': 4, 'weights': torch.zeros(1000)}, path)
    monkeypatch.setattr(torch, 'save', real_save)
    state = torch.load(path, weights_only=True)
    assert state['update'] == 2 and bool((state['weights'] == 1).all())
