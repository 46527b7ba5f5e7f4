"""Non-finite training steps are never applied: they are skipped, logged with their files, and counted.

Measured without this guard: one float WAV with NaN samples made every loss NaN from the first update, the weights
became NaN, the run died later at the MMD naming no file, and a mid-epoch checkpoint could write the NaN state
over the last good one. audiocraft's step has no such guard; this mixin adds one around it, in three places:

- **The batch**, before anything reads it: a batch with a non-finite sample is not run at all (its forward
  alone would move the quantizer's EMA codebooks to NaN). The train loader keeps each batch's segment infos
  (audiocraft's `return_info`, `BatchSources`), so the log names the file and the time of each bad item.
  Under DDP the verdict is all-reduced (one scalar), so every rank skips the same steps.
- **The gradients**: a step pre-hook on the model's and the adversaries' optimizers refuses a non-finite gradient
  (`NonFiniteStep`); the step is then skipped with its gradients zeroed, and the log names its batch's files.
  The gradients are the ranks' averages at that point, so every rank skips together.
- **The checkpoint**: a state holding a non-finite tensor is never written (`save_checkpoints`).

Past `finite_steps.max_skipped` skipped train steps in a run the run stops (`NonFiniteTraining`); nothing is
written then, so the last checkpoint stays the last finite one. A valid/evaluate batch with non-finite samples is
left out of the metrics and logged, not counted.

A solver class that does its own work in `run_step` before this mixin's (CompressionMMDSolver: the macro-batch
MMD) asks `step_admitted(batch)` first and hands a refused batch straight to `super().run_step` (the verdict is
cached per batch: the batch is checked once). A refused batch joins no MMD macro-batch: the macro-batch in
progress completes one step later.
"""
import contextlib
import typing as tp

import flashy
import omegaconf
import torch

from ..config_validation import is_int, require

# Default of `finite_steps.max_skipped` (config/solver/compression/default.yaml); also what a config without the
# block gets. A finite run skips no step: the start-up manifest check refuses non-finite files, so a skip comes
# from a file changed after it, or from a diverging model, which skips every step from then on. Ten lets a run
# ride out a rare isolated overflow, and stops a diverged one within ten steps instead of an epoch.
DEFAULT_MAX_SKIPPED = 10
MAX_NAMED = 16  # items named in one log line


class NonFiniteStep(FloatingPointError):
    """An optimizer was about to apply a non-finite gradient."""


class NonFiniteTraining(RuntimeError):
    """The run stops: too many skipped steps, or a state that is not finite."""


def max_skipped(cfg: omegaconf.DictConfig) -> int:
    return cfg.get('finite_steps', {}).get('max_skipped', DEFAULT_MAX_SKIPPED)


def validate_config(cfg: omegaconf.DictConfig) -> None:
    value = max_skipped(cfg)
    require(is_int(value) and value >= 0, 'finite_steps.max_skipped', value, "a number of steps >= 0")


def refuse_nonfinite_gradients(optimizer: torch.optim.Optimizer, args: tp.Any, kwargs: tp.Any) -> None:
    """Optimizer step pre-hook: raises `NonFiniteStep` before a non-finite gradient is applied."""
    grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
    if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
        raise NonFiniteStep(f"non-finite gradient for {type(optimizer).__name__} of "
                            f"{sum(g.numel() for g in grads)} parameters")


def first_nonfinite(modules: tp.Mapping[str, torch.nn.Module]) -> tp.Optional[str]:
    """Name of the first parameter or buffer that holds a non-finite value, or None."""
    for prefix, module in modules.items():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return f'{prefix}.{name}'
    return None


class BatchSources:
    """The train loader, yielding its [B, C, T] batches as before, and keeping the segment infos of the last one
    (built with audiocraft's `return_info`): where each item of a batch comes from, for the log of a skipped step."""

    def __init__(self, loader: tp.Any):
        self.loader = loader
        self.batch: tp.Optional[torch.Tensor] = None
        self.infos: tp.Optional[tp.List[tp.Any]] = None

    def __iter__(self) -> tp.Iterator[torch.Tensor]:
        for wav, infos in self.loader:
            self.batch, self.infos = wav, infos
            yield wav

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> tp.Any:  # sampler, dataset, ...: the loader's
        return getattr(self.__dict__['loader'], name)

    def describe(self, batch: tp.Any) -> str:
        """The files of `batch` ('file at 1.50 s' per item, the non-finite ones first and marked)."""
        if batch is not self.batch or self.infos is None:
            return 'files unknown (not a batch of the train loader)'
        bad = (~torch.isfinite(batch)).flatten(1).any(dim=1).tolist()
        order = sorted(range(len(self.infos)), key=lambda i: not bad[i])
        named = [self._item(batch[i], self.infos[i], bad[i]) for i in order[:MAX_NAMED]]
        more = f' and {len(order) - MAX_NAMED} more' if len(order) > MAX_NAMED else ''
        return f"{sum(bad)} of {len(bad)} items non-finite; items: " + '; '.join(named) + more

    @staticmethod
    def _item(wav: torch.Tensor, info: tp.Any, bad: bool) -> str:
        start = info.seek_time
        if not bad:
            return f'{info.meta.path} from {start:.2f} s'
        first = int((~torch.isfinite(wav)).any(dim=0).nonzero()[0])
        return f'{info.meta.path} NON-FINITE at {start + first / info.sample_rate:.2f} s (segment from {start:.2f} s)'


@contextlib.contextmanager
def _train_return_info(cfg: omegaconf.DictConfig) -> tp.Iterator[None]:
    """`dataset.train.return_info` set while audiocraft builds the loaders (its builder then collates the infos)."""
    node = cfg.dataset.train
    had, value = 'return_info' in node, node.get('return_info')
    with omegaconf.open_dict(node):
        node.return_info = True
    try:
        yield
    finally:
        with omegaconf.open_dict(node):
            if had:
                node.return_info = value
            else:
                del node['return_info']


class FiniteStepsMixin:
    """Put right before audiocraft's CompressionSolver in the bases (see the module docstring)."""

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)  # type: ignore[call-arg]
        self.skipped_steps = 0
        self._verdict: tp.Tuple[tp.Any, bool] = (None, True)  # (last batch checked, admitted)
        self.gradient_hooks = [optimizer.register_step_pre_hook(refuse_nonfinite_gradients)
                               for optimizer in self._optimizers()]

    def _optimizers(self) -> tp.List[torch.optim.Optimizer]:
        adversaries = getattr(self, 'adv_losses', {})
        return [self.optimizer] + [adv.optimizer for adv in adversaries.values()]  # type: ignore[attr-defined]

    def build_dataloaders(self):
        with _train_return_info(self.cfg):  # type: ignore[attr-defined]
            super().build_dataloaders()  # type: ignore[misc]
        if 'train' in self.dataloaders:  # type: ignore[attr-defined]
            self.dataloaders['train'] = BatchSources(self.dataloaders['train'])  # type: ignore[attr-defined]

    def step_admitted(self, batch: tp.Any) -> bool:
        """False when `batch` holds a non-finite sample (on any rank, in training). Checked once per batch."""
        if self._verdict[0] is batch or not isinstance(batch, torch.Tensor):
            return self._verdict[1] if self._verdict[0] is batch else True
        bad = (~torch.isfinite(batch).all()).float()
        if self.is_training and flashy.distrib.world_size() > 1:  # type: ignore[attr-defined]
            bad = bad.to(self.device)  # type: ignore[attr-defined]
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        self._verdict = (batch, not bool(bad))
        return self._verdict[1]

    def run_step(self, idx: int, batch: tp.Any, metrics: dict):
        if not self.step_admitted(batch):
            return self._skip(idx, batch, metrics, 'non-finite samples in the batch')
        if not self.is_training:  # type: ignore[attr-defined]
            return super().run_step(idx, batch, metrics)  # type: ignore[misc]
        try:
            metrics = super().run_step(idx, batch, metrics)  # type: ignore[misc]
        except NonFiniteStep as exc:
            return self._skip(idx, batch, metrics, str(exc))
        return metrics  # no `skipped` key: an applied step logs what audiocraft's does (a skipped one: skipped=1)

    def _skip(self, idx: int, batch: tp.Any, metrics: dict, why: str) -> dict:
        metrics.clear()  # the losses of a skipped step are not averaged into the epoch's
        loader = self.dataloaders.get('train') if self.is_training else None  # type: ignore[attr-defined]
        files = loader.describe(batch) if isinstance(loader, BatchSources) else 'files of this split not kept'
        where = f"{self.current_stage} step {idx + 1} of epoch {self.epoch}"  # type: ignore[attr-defined]
        if not self.is_training:  # type: ignore[attr-defined]
            self.logger.warning("Left out %s: %s (%s)", where, why, files)  # type: ignore[attr-defined]
            return metrics
        for optimizer in self._optimizers():
            optimizer.zero_grad()
        self.skipped_steps += 1
        limit = max_skipped(self.cfg)  # type: ignore[attr-defined]
        self.logger.warning("Skipped %s, not applied: %s; %d skipped in this run (finite_steps.max_skipped=%d). %s",
                            where, why, self.skipped_steps, limit, files)  # type: ignore[attr-defined]
        if self.skipped_steps > limit:
            raise NonFiniteTraining(f"{self.skipped_steps} train steps skipped for non-finite values, more than "
                                    f"finite_steps.max_skipped={limit}: stopping; the last checkpoint is the last "
                                    f"finite state. Last skipped: {where}: {why}. {files}")
        metrics['skipped'] = 1.
        return metrics

    def save_checkpoints(self):
        culprit = first_nonfinite({'model': self.model,  # type: ignore[attr-defined]
                                   **{f'adv_losses.{k}': v for k, v in getattr(self, 'adv_losses', {}).items()}})
        if culprit is not None:
            raise NonFiniteTraining(f"Not writing a checkpoint at epoch {self.epoch}: {culprit} is not "  # type: ignore
                                    "finite; the last checkpoint is kept.")
        return super().save_checkpoints()  # type: ignore[misc]
