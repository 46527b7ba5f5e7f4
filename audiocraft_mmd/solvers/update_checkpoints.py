"""Checkpoints every `checkpoint.every_updates` train updates, not only at the end of an epoch.

A run that is preempted (SLURM requeue, time-limit signal, a killed task) restarts from the last checkpoint:
with epoch checkpoints only, it loses up to a whole epoch of updates (hours on a cluster). Here the solver also
saves in the middle of the train stage, with the position it reached (`epoch`, updates done); a restored solver
whose checkpoint stopped mid-epoch steps over the updates already done, so that the epoch still counts
`updates_per_epoch` updates and a preemption loses at most `every_updates`. The batches stepped over are drawn
(and dropped) so that the data order of the epoch is that of an uninterrupted run where the sampler is seeded by
the epoch (DDP's DistributedSampler). Writes are audiocraft's `save_checkpoints`, i.e. flashy's
`write_and_rename`: a temporary file renamed over the checkpoint, never a half-written one.

`every_updates` must be a multiple of `mmd.num_batches` (a macro-batch is not split over a checkpoint: the rule
belongs to the `mmd` block's owner, `losses.mmd_config.check_cadence`).

A solver class that adds its own work to `run_step` (CompressionMMDSolver: the macro-batch MMD and its separate
backward) sits *before* this mixin in the MRO, so it must return at once when `done_before_interruption(idx)`:
otherwise the stepped-over macro-batches still backpropagate, and their gradients pile up in `.grad` until the
first real step.
"""
import typing as tp

from ..config_validation import is_int, require
from ..losses.mmd_config import check_cadence

PROGRESS_KEY = 'update_checkpoint_progress'


def validate_config(cfg) -> None:
    every = cfg.checkpoint.get('every_updates')
    if every is None:
        return
    require(is_int(every) and every > 0, 'checkpoint.every_updates', every, "a positive number of updates, or null")
    check_cadence(cfg.get('mmd'), every)


class UpdateCheckpointMixin:
    """Put first in the bases of the solver class (see the module docstring for a class with its own `run_step`)."""
    _progress: tp.Optional[tp.Tuple[int, int]] = None  # (epoch, updates done) of a mid-epoch checkpoint
    _skip_updates: int = 0

    def state_dict(self):
        state = super().state_dict()  # type: ignore[misc]
        state[PROGRESS_KEY] = self._progress
        return state

    def load_state_dict(self, state):
        progress = state.pop(PROGRESS_KEY, None)
        super().load_state_dict(state)  # type: ignore[misc]
        self._progress = tuple(progress) if progress is not None else None

    def restore(self, *args, **kwargs):
        restored = super().restore(*args, **kwargs)  # type: ignore[misc]
        if self._progress is not None and self._progress[0] == self.epoch:  # type: ignore[attr-defined]
            self._skip_updates = self._progress[1]
        if restored:  # where a preempted run picks up, whole epoch or not: the operator's (and the tests') record
            self.logger.info("Resuming epoch %d after update %d (%s checkpoint)",  # type: ignore[attr-defined]
                             self.epoch, self._skip_updates,  # type: ignore[attr-defined]
                             'mid-epoch' if self._skip_updates else 'epoch')
        return restored

    def done_before_interruption(self, idx: int) -> bool:
        """True for the train updates of a resumed epoch that its mid-epoch checkpoint already holds."""
        return self.is_training and idx < self._skip_updates  # type: ignore[attr-defined]

    def run_step(self, idx: int, batch, metrics: dict):
        if not self.is_training:  # type: ignore[attr-defined]
            return super().run_step(idx, batch, metrics)  # type: ignore[misc]
        if self.done_before_interruption(idx):
            return metrics
        metrics = super().run_step(idx, batch, metrics)  # type: ignore[misc]
        done = idx + 1
        every = self.cfg.checkpoint.get('every_updates')  # type: ignore[attr-defined]
        if every and done % every == 0 and done < self.train_updates_per_epoch:  # type: ignore[attr-defined]
            self._progress = (self.epoch, done)  # type: ignore[attr-defined]
            self.save_checkpoints()  # type: ignore[attr-defined]
        if done == self.train_updates_per_epoch:  # type: ignore[attr-defined]
            self._progress, self._skip_updates = None, 0  # the epoch checkpoint (commit) is a whole epoch
        return metrics
