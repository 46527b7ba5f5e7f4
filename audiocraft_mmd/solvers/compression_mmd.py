"""EnCodec-MMD: audiocraft's CompressionSolver plus the independence loss (paper Algorithm 1).

Every audiocraft loss (adversarial, feature matching, l1, msspec, balancer) is untouched. What
this solver adds:

- **Macro-batch MMD.** The last `mmd.num_batches` training batches (raw audio) are kept. On the
  step that completes the macro-batch, before audiocraft's step runs, they are re-encoded with
  gradient checkpointing of the encoder (peak activation memory ~ one batch), the per-codebook
  streams are extracted (`audiocraft_mmd.streams`), and `losses.mmd * MMD` is back-propagated
  in its own backward. Its gradients sit in `.grad` when audiocraft's step adds the balanced
  losses' gradients, so **the optimizer update of the step that completes the macro-batch**
  (steps num_batches, 2*num_batches, ... of each epoch) receives them; the other steps are
  exactly audiocraft's. Only encoder parameters receive MMD gradient (see `streams.py`).
- **Distributed.** MMD rows are per rank (not gathered): each rank estimates the MMD on its own
  macro-batch; `flashy.distrib.sync_model` in audiocraft's step averages all gradients, MMD's
  included, so parameters stay identical across ranks. The averaged gradient is that of the
  mean of per-rank unbiased estimates (unbiased, with the variance of n = per-rank rows).
- **Resume.** The macro-batch buffer is not checkpointed: it is cleared at the start of every
  train/valid stage. Checkpoints are written at epoch ends, so a run killed mid-epoch restarts
  that epoch with an empty buffer, exactly as an uninterrupted run starts it. Batches at the end
  of an epoch that do not fill a macro-batch get no MMD term (choose updates_per_epoch as a
  multiple of num_batches to avoid it; a warning says so).
- **Valid/evaluate.** The valid stage pools `mmd.valid_batches` batches into one no-grad MMD
  estimate (so valid curves exist even at weight 0); the evaluate stage adds the codebook
  independence metrics (`tc`, `tc_delay`, per-codebook MI) and the MMD on the evaluate set.
- With `losses.mmd = 0` the training step is exactly audiocraft's (same RNG use, same updates).
"""
import typing as tp

import flashy
import omegaconf
import torch
from torch.utils.checkpoint import checkpoint

from ..config_validation import validate_mmd_config
from ..losses import MMDLoss
from ..streams import rvq_streams
from .compression import CompressionSolver


def build_mmd_loss(mmd_cfg: omegaconf.DictConfig) -> MMDLoss:
    """MMDLoss from the `mmd` config block."""
    kernel_kwargs: tp.Dict[str, tp.Any] = {}
    if mmd_cfg.kernel == 'gaussian':
        kernel_kwargs['sigmas'] = tuple(float(s) for s in mmd_cfg.sigmas)
    elif mmd_cfg.kernel == 'squared_inverse':
        kernel_kwargs['sigma'] = float(mmd_cfg.sigma)
    return MMDLoss(kernel=mmd_cfg.kernel, kernel_kwargs=kernel_kwargs, delay=mmd_cfg.delay,
                   normalize=mmd_cfg.normalize, max_rows=mmd_cfg.max_rows, block_size=mmd_cfg.block_size,
                   exclude_shared=mmd_cfg.exclude_shared)


class CompressionMMDSolver(CompressionSolver):
    """CompressionSolver with the MMD independence loss. See the module docstring."""

    def __init__(self, cfg: omegaconf.DictConfig):
        validate_mmd_config(cfg)
        super().__init__(cfg)
        self.mmd_weight = float(cfg.losses.mmd)
        self.mmd_loss = build_mmd_loss(cfg.mmd)
        self._macro_batch: tp.List[torch.Tensor] = []
        self.mmd_rng = torch.Generator()
        updates = cfg.optim.updates_per_epoch
        if self.mmd_weight > 0 and updates and updates % cfg.mmd.num_batches:
            self.logger.warning("optim.updates_per_epoch=%d is not a multiple of mmd.num_batches=%d: the last "
                                "%d batches of each epoch get no MMD term", updates, cfg.mmd.num_batches,
                                updates % cfg.mmd.num_batches)

    def common_train_valid(self, dataset_split: str, **kwargs: tp.Any):
        self._macro_batch = []
        # Own generator for the shuffles, so that the MMD never changes audiocraft's random stream.
        self.mmd_rng.manual_seed(4321 + self.epoch)
        try:
            metrics = super().common_train_valid(dataset_split, **kwargs)
        finally:
            self._macro_batch = []
        if self.is_training and flashy.distrib.world_size() > 1:
            metrics['rank_param_spread'] = self.rank_parameter_spread()
        return metrics

    def rank_parameter_spread(self) -> float:
        """Largest difference across ranks of any parameter tensor's sum (0 when ranks agree).

        A cheap check, once per epoch, that the separate MMD backward keeps ranks identical."""
        sums = torch.stack([p.detach().double().sum() for p in self.model.parameters()])
        high, low = sums.clone(), sums.clone()
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        return (high - low).abs().max().item()

    def codebook_streams(self, x: torch.Tensor, with_grad: bool) -> torch.Tensor:
        """Streams [B, K, D, T] of the audio x [B, C, L], the encoder checkpointed if asked."""
        x, _ = self.model.preprocess(x)
        if with_grad and self.cfg.mmd.checkpoint_encoder:
            emb = checkpoint(self.model.encoder, x, use_reentrant=False)
        else:
            emb = self.model.encoder(x)
        return rvq_streams(self.model.quantizer, emb, kind=self.cfg.mmd.streams)

    def macro_batch_mmd(self, batches: tp.Sequence[torch.Tensor], with_grad: bool) -> torch.Tensor:
        """The MMD of a macro-batch of audio batches (each [B, C, L])."""
        with torch.set_grad_enabled(with_grad):
            streams = torch.cat([self.codebook_streams(x, with_grad) for x in batches], dim=0)
            mmd = self.mmd_loss(streams, generator=self.mmd_rng)
        if not torch.isfinite(mmd):
            raise FloatingPointError(f"The MMD loss is {mmd.item()} at epoch {self.epoch} ({self.current_stage}); "
                                     "checkpoints of previous epochs are intact.")
        return mmd

    def run_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        if self.is_training and self.mmd_weight > 0:
            self._macro_batch.append(batch.to(self.device))
            if len(self._macro_batch) == self.cfg.mmd.num_batches:
                mmd = self.macro_batch_mmd(self._macro_batch, with_grad=True)
                # Separate backward: accumulates into .grad before audiocraft's own backward and step.
                (self.mmd_weight * mmd).backward()
                self._macro_batch = []
                metrics['mmd'] = mmd.detach()
                metrics['mmd_weighted'] = self.mmd_weight * mmd.detach()
        elif not self.is_training and self.cfg.mmd.valid_batches > 0:
            self._macro_batch.append(batch.to(self.device))
            if len(self._macro_batch) == self.cfg.mmd.valid_batches:
                metrics['mmd'] = self.macro_batch_mmd(self._macro_batch, with_grad=False)
                self._macro_batch = []
        return super().run_step(idx, batch, metrics)

    def evaluate(self):
        """audiocraft's reconstruction metrics, plus codebook independence and MMD on the evaluate set."""
        metrics = super().evaluate()
        if self.cfg.metrics.independence.use:
            metrics.update(self.evaluate_independence())
        return metrics

    def evaluate_independence(self) -> tp.Dict[str, float]:
        from ..metrics import CodebookIndependence
        self.model.eval()
        metric = CodebookIndependence(num_codebooks=self.model.num_codebooks, cardinality=self.model.cardinality,
                                      num_pairs=self.cfg.metrics.independence.num_pairs,
                                      seed=self.cfg.metrics.independence.seed).to(self.device)
        pooled: tp.List[torch.Tensor] = []
        results: tp.Dict[str, float] = {}
        self.mmd_rng.manual_seed(4321 + self.epoch)
        loader = self.dataloaders['evaluate']
        lp = self.log_progress(f'{self.current_stage} independence', loader, total=len(loader),
                               updates=self.log_updates)
        with torch.no_grad():
            for batch in lp:
                x = batch.to(self.device)
                codes, _ = self.model.encode(x)
                metric.update(codes)
                if len(pooled) < max(self.cfg.mmd.valid_batches, 1):
                    pooled.append(x)
            results['mmd'] = self.macro_batch_mmd(pooled, with_grad=False).item()
        results.update({key: float(value) for key, value in metric.compute().items()})
        # The metric's states are sum-reduced across ranks; the MMD is averaged like other metrics.
        results['mmd'] = flashy.distrib.average_metrics({'mmd': results['mmd']})['mmd']
        return results
