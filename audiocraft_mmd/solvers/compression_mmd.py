"""EnCodec-MMD: audiocraft's CompressionSolver plus the independence loss (paper Algorithm 1).

Every audiocraft loss (adversarial, feature matching, l1, msspec, balancer) is untouched. What
this solver adds:

- **Macro-batch MMD.** The last `mmd.num_batches` training batches (raw audio) are kept. On the
  step that completes the macro-batch, before audiocraft's step runs, they are re-encoded with
  gradient checkpointing of the encoder (peak activation memory ~ one batch), the per-codebook
  streams are extracted (`audiocraft_mmd.losses.streams`), and `losses.mmd * MMD` is back-propagated
  in its own backward. Its gradients sit in `.grad` when audiocraft's step adds the balanced
  losses' gradients, so **the optimizer update of the step that completes the macro-batch**
  (steps num_batches, 2*num_batches, ... of each epoch) receives them; the other steps are
  exactly audiocraft's. Only encoder parameters receive MMD gradient (see `losses/streams.py`).
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
- With `losses.mmd = 0` and `codec_training` at audiocraft's behaviour (`init=default`,
  `dead_codes=audiocraft`) the training step is exactly audiocraft's (same RNG use, same updates).
- **Memory bank** (`mmd.estimator: bank`, `losses/mmd_bank.py`): instead of the macro-batch, every
  training step compares the rows of its own forward (captured from audiocraft's forward by
  `forward_streams.ForwardStreams`, no re-encode) with the detached rows of the previous
  num_batches - 1 steps; d(weight * MMD)/d(encoder output) joins the first backward audiocraft runs
  through the encoder (`forward_streams.GradientOnce`), so every step's update carries an MMD term
  and no extra encoder pass is run. The bank is cleared at every stage start; `mmd` is logged every
  num_batches steps (the full estimate over current + bank rows).
- **Global scope** (`mmd.scope: global`, `audiocraft_mmd/distributed.py`): the training estimate
  (exact or bank) is computed over the rows of all ranks, gathered with autograd, instead of each
  rank's own (see "Distributed" above for `rank`); valid/evaluate estimates stay per rank, averaged.
  The random features (`mmd.marginals: features`, exact or bank) gather no rows: their sums are all-reduced
  (`MMDLoss.scope`).
- **Conditional shuffle** (`mmd.shuffle: conditional`, `losses/strata.py`): the codes of the streams
  (picked by the same RVQ stages, exact path, or recorded from audiocraft's forward, bank path) give each
  row its stratum of the past; strata travel with the rows through the gather and the bank.
"""
import typing as tp

import flashy
import omegaconf
import torch
from torch.utils.checkpoint import checkpoint

from ..config_validation import ConfigError, is_int, require
from ..distributed import gather_rows, tile_share
from ..losses import MMDBank, MMDLoss
from ..losses.mmd_config import MMDLossConfig, with_added_keys
from ..models.builders import codebook_counts, codebook_keys, has_codebooks, hop_length
from ..losses.streams import codebook_streams
from .compression import CompressionSolver, validate_config as validate_compression_config
from .forward_streams import ForwardStreams, GradientOnce
from .update_checkpoints import UpdateCheckpointMixin, validate_config as validate_update_checkpoints

# Keys of the `mmd` block that this solver owns (the loss owns `MMDLossConfig.KEYS`).
SOLVER_KEYS = ('num_batches', 'valid_batches', 'checkpoint_encoder', 'estimator', 'scope', 'streams')
ESTIMATORS = ('exact', 'bank')
SCOPES = ('rank', 'global')


def validate_config(cfg: omegaconf.DictConfig) -> MMDLossConfig:
    """Validate `losses.mmd` and the `mmd` block (the solver's keys here, the loss keys parsed once by
    `MMDLossConfig.parse`); returns the parsed loss keys."""
    validate_compression_config(cfg)
    validate_update_checkpoints(cfg)
    if 'mmd' not in cfg or 'mmd' not in cfg.get('losses', {}):
        raise ConfigError("The compression_mmd solver needs `losses.mmd` and an `mmd` block "
                          "(see config/solver/compression/default.yaml)")
    weight = cfg.losses.mmd
    require(isinstance(weight, (int, float)) and weight >= 0, 'losses.mmd', weight, "must be a number >= 0")
    mmd = omegaconf.OmegaConf.create(with_added_keys(cfg.mmd))
    known = set(SOLVER_KEYS) | set(MMDLossConfig.KEYS)
    unknown = sorted(set(mmd.keys()) - known)
    require(not unknown, 'mmd', unknown, f"unknown key(s); known keys: {sorted(known)}")
    require(is_int(mmd.num_batches) and mmd.num_batches >= 1, 'mmd.num_batches', mmd.num_batches,
            "must be an integer >= 1")
    loss_config = MMDLossConfig.parse(mmd)
    require(mmd.get('streams') is not None, 'mmd.streams', None, "must be set (its kinds depend on the quantizer, "
            "checked by models.builders.validate_config)")
    require(is_int(mmd.valid_batches) and mmd.valid_batches >= 0, 'mmd.valid_batches', mmd.valid_batches,
            "must be an integer >= 0")
    require(isinstance(mmd.checkpoint_encoder, bool), 'mmd.checkpoint_encoder', mmd.checkpoint_encoder,
            "must be true or false")
    require(mmd.get('estimator') in ESTIMATORS, 'mmd.estimator', mmd.get('estimator'), f"must be one of {ESTIMATORS}")
    require(mmd.get('scope') in SCOPES, 'mmd.scope', mmd.get('scope'), f"must be one of {SCOPES}")
    if mmd.scope == 'global' and loss_config.marginals == 'features':
        require(loss_config.normalize == 'none', 'mmd.normalize', loss_config.normalize, "must be none with "
                "mmd.marginals=features and mmd.scope=global (the features' sums cross the ranks, not the rows)")
    if mmd.estimator == 'bank':
        for key, value in MMDBank.unsupported(MMDLoss.from_config(loss_config)).items():
            require(False, f'mmd.{key}', value, "is not supported with mmd.estimator=bank (the bank rows must be "
                    "constants: normalize=none, max_rows=null; marginals shuffle with exclude_shared=false, or "
                    "features)")
    if not has_codebooks(cfg):
        require(weight == 0, 'losses.mmd', weight, "encodec.quantizer=no_quant has no codebooks to make "
                "independent; use losses.mmd=0")
    num_codebooks, _ = codebook_counts(cfg)  # rvq.n_q, pvq.n_q or dac.n_codebooks
    if num_codebooks is not None:
        require(num_codebooks >= 2 or weight == 0, codebook_keys(cfg)[0], num_codebooks,
                "the independence loss needs at least 2 codebooks")
        hop = hop_length(cfg)
        if mmd.delay and cfg.get('dataset', {}).get('segment_duration') and hop:
            frames = int(cfg.dataset.segment_duration * cfg.sample_rate) // hop
            require(frames >= num_codebooks or weight == 0, 'mmd.delay', mmd.delay,
                    f"the delay alignment needs segments of at least K={num_codebooks} frames, "
                    f"dataset.segment_duration gives {frames}")
    return loss_config


class CompressionMMDSolver(UpdateCheckpointMixin, CompressionSolver):
    """CompressionSolver with the MMD independence loss. See the module docstring."""

    def __init__(self, cfg: omegaconf.DictConfig):
        loss_config = validate_config(cfg)
        super().__init__(cfg)
        self.mmd_weight = float(cfg.losses.mmd)
        self.mmd_loss = MMDLoss.from_config(loss_config)
        self._macro_batch: tp.List[torch.Tensor] = []
        self.mmd_rng = torch.Generator()
        self.mmd_estimator = with_added_keys(cfg.mmd)['estimator']
        self.mmd_scope = with_added_keys(cfg.mmd)['scope']
        # Built whenever the loss allows one (validate_config refuses the bank otherwise), so that benchmarks
        # may switch `mmd_estimator` on one solver.
        self.mmd_bank = MMDBank(self.mmd_loss, cfg.mmd.num_batches) if not MMDBank.unsupported(self.mmd_loss) else None
        self._forward_streams: tp.Optional[ForwardStreams] = None  # hooks installed on first bank step
        updates = cfg.optim.updates_per_epoch
        if self.mmd_weight > 0 and updates and updates % cfg.mmd.num_batches:
            self.logger.warning("optim.updates_per_epoch=%d is not a multiple of mmd.num_batches=%d: the last "
                                "%d batches of each epoch get no MMD term", updates, cfg.mmd.num_batches,
                                updates % cfg.mmd.num_batches)

    def common_train_valid(self, dataset_split: str, **kwargs: tp.Any):
        self._macro_batch = []
        self._clear_bank()
        # Own generator for the shuffles, so that the MMD never changes audiocraft's random stream.
        self.mmd_rng.manual_seed(4321 + self.epoch)
        try:
            metrics = super().common_train_valid(dataset_split, **kwargs)
        finally:
            self._macro_batch = []
            self._clear_bank()
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

    def audio_streams(self, x: torch.Tensor, with_grad: bool) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """Streams [B, K, D, T] and codes [B, K, T] of the audio x [B, C, L], the encoder checkpointed if asked."""
        x, _ = self.model.preprocess(x)
        if with_grad and self.cfg.mmd.checkpoint_encoder:
            emb = checkpoint(self.model.encoder, x, use_reentrant=False)
        else:
            emb = self.model.encoder(x)
        return codebook_streams(self.model.quantizer, emb, kind=self.cfg.mmd.streams, with_codes=True)

    def _clear_bank(self) -> None:
        if self.mmd_bank is not None:
            self.mmd_bank.clear()

    @property
    def _mmd_gather(self) -> tp.Optional[tp.Callable[[torch.Tensor], torch.Tensor]]:
        """Row gathering for the training estimate under `mmd.scope: global` (valid/evaluate stay per rank:
        every rank runs the same number of training steps, not necessarily of evaluation batches)."""
        return gather_rows if self.mmd_scope == 'global' and self.is_training else None

    def _check_finite(self, mmd: torch.Tensor) -> None:
        """Raises in valid/evaluate. In training a non-finite MMD makes the gradients non-finite: the step is then
        skipped on every rank, after their gradients are averaged (`finite_steps`), instead of one rank raising."""
        if not torch.isfinite(mmd) and not self.is_training:
            raise FloatingPointError(f"The MMD loss is {mmd.item()} at epoch {self.epoch} ({self.current_stage}); "
                                     "checkpoints of previous epochs are intact.")

    def macro_batch_mmd(self, batches: tp.Sequence[torch.Tensor], with_grad: bool) -> torch.Tensor:
        """The MMD of a macro-batch of audio batches (each [B, C, L])."""
        with torch.set_grad_enabled(with_grad):
            streams, codes = (torch.cat(parts, dim=0) for parts in
                              zip(*[self.audio_streams(x, with_grad) for x in batches]))
            gather = self._mmd_gather
            mmd = self.mmd_loss(streams, generator=self.mmd_rng, gather=gather, codes=codes,
                                share=None if gather is None else tile_share())
        self._check_finite(mmd)
        return mmd

    def bank_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        """audiocraft's training step, plus the memory-bank MMD of the streams of its own forward.

        When the quantizer's forward returns, the streams' rows (gathered across ranks under the global
        scope) go through the bank; d(weight * loss)/d(emb) (emb: encoder output, the graph from the rows to
        emb is a few subtractions) is added to the first backward through emb (`GradientOnce`)."""
        assert self.mmd_bank is not None, "validate_config refuses mmd.estimator=bank with these loss options"
        if self._forward_streams is None:
            self._forward_streams = ForwardStreams(self.model.quantizer, self.cfg.mmd.streams)
        injected: tp.List[GradientOnce] = []

        def on_streams(streams: torch.Tensor, emb: torch.Tensor, codes: torch.Tensor) -> None:
            rows, strata = self.mmd_loss.aligned_rows(streams), self.mmd_loss.aligned_strata(codes)
            gather, reduce = self.mmd_loss.scope(self._mmd_gather)
            if gather is not None:
                rows, strata = gather(rows), None if strata is None else gather(strata)
            with_value = (idx + 1) % self.cfg.mmd.num_batches == 0
            result = self.mmd_bank(rows, self.mmd_rng, with_value=with_value, strata=strata, reduce=reduce)
            (grad,) = torch.autograd.grad(self.mmd_weight * result.loss, emb, retain_graph=True)
            injected.append(GradientOnce(emb, grad))
            if result.value is not None:
                self._check_finite(result.value)
                metrics['mmd'] = result.value
                metrics['mmd_weighted'] = self.mmd_weight * result.value

        with self._forward_streams.armed(on_streams):
            metrics = super().run_step(idx, batch, metrics)
        skipped = metrics.get('skipped')  # an adversary's non-finite step ends it before audiocraft's backward
        if not skipped and (len(injected) != 1 or not injected[0].applied):
            raise RuntimeError("The bank MMD gradient did not join audiocraft's backward "
                               f"({len(injected)} quantizer forward(s) seen in the step).")
        for hook in injected:
            hook.remove()
        return metrics

    def run_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        if self.done_before_interruption(idx):
            return metrics  # resumed mid-epoch: no MMD backward either (UpdateCheckpointMixin)
        if not self.step_admitted(batch):
            return super().run_step(idx, batch, metrics)  # non-finite samples: skipped and logged (finite_steps)
        if self.is_training and self.mmd_weight > 0 and self.mmd_estimator == 'bank':
            return self.bank_step(idx, batch, metrics)
        if self.is_training and self.mmd_weight > 0:
            self._macro_batch.append(batch.to(self.device))
            if len(self._macro_batch) == self.cfg.mmd.num_batches:
                mmd = self.macro_batch_mmd(self._macro_batch, with_grad=True)
                # Separate backward: accumulates into .grad before audiocraft's own backward and step.
                (self.mmd_weight * mmd).backward()
                self._macro_batch = []
                metrics['mmd'] = mmd.detach()
                metrics['mmd_weighted'] = self.mmd_weight * mmd.detach()
        elif not self.is_training and self.cfg.mmd.valid_batches > 0 and self.has_codebooks:
            self._macro_batch.append(batch.to(self.device))
            if len(self._macro_batch) == self.cfg.mmd.valid_batches:
                metrics['mmd'] = self.macro_batch_mmd(self._macro_batch, with_grad=False)
                self._macro_batch = []
        return super().run_step(idx, batch, metrics)

    def evaluate(self):
        """audiocraft's reconstruction metrics, plus codebook independence and MMD on the evaluate set."""
        metrics = super().evaluate()
        if self.cfg.metrics.independence.use and self.has_codebooks:
            metrics.update(self.evaluate_independence())
        return metrics

    def evaluate_independence(self) -> tp.Dict[str, float]:
        from ..metrics import CodebookIndependence, measure
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

        def batches() -> tp.Iterator[torch.Tensor]:
            for batch in lp:
                x = batch.to(self.device)
                if len(pooled) < max(self.cfg.mmd.valid_batches, 1):
                    pooled.append(x)  # the first batches also give the evaluate MMD
                yield x

        with torch.no_grad():
            measure(self.model, batches(), metric)
            results['mmd'] = self.macro_batch_mmd(pooled, with_grad=False).item()
        results.update({key: float(value) for key, value in metric.compute().items()})
        # The metric's states are sum-reduced across ranks; the MMD is averaged like other metrics.
        results['mmd'] = flashy.distrib.average_metrics({'mmd': results['mmd']})['mmd']
        return results
