"""audiocraft's CompressionSolver, made to work on torch 2.11 (see `audiocraft_mmd.compat`)."""
import contextlib
import typing as tp

import flashy
import omegaconf
import torch
from audiocraft.solvers import compression

from ..compat.checkpoints import WeightsOnlyCheckpointMixin
from . import finite_steps
from ..environment import PRETRAINED_PREFIX
from ..config_validation import is_int, require
from ..metrics.liveness import Liveness, looks_collapsed
from ..models import builders as model_builders, codec_training, encoder_only
from ..models.codec_source import audiocraft_architecture, resolve_source
from . import music_metrics
from .finetune import FinetuneConfig, FrozenAwareEMA, take_source_architecture


def validate_config(cfg: omegaconf.DictConfig) -> None:
    """Check the blocks our compression solvers add to audiocraft's: `finetune` and the `continue_from` source
    (whose architecture the config takes under `finetune.architecture=checkpoint`, `solvers/finetune.py`), the
    quantizer (`encodec.quantizer`, `pvq`), `codec_training`, `liveness` and `finite_steps`."""
    take_source_architecture(cfg)
    model_builders.validate_config(cfg)
    finite_steps.validate_config(cfg)
    if 'codec_training' in cfg:
        codec_training.validate_config(cfg.codec_training)
        warmup = cfg.codec_training.get('quantizer_warmup', 0)
        require(warmup == 0 or cfg.get('compression_model') == 'dac', 'codec_training.quantizer_warmup', warmup,
                f"is implemented for compression_model=dac only (got {cfg.get('compression_model')!r}); use 0")
    if 'liveness' in cfg:
        batches = cfg.liveness.get('valid_batches')
        require(is_int(batches) and batches >= 0, 'liveness.valid_batches', batches, "must be an integer >= 0")


@contextlib.contextmanager
def _without_key(node: omegaconf.DictConfig, key: str):
    """Hide `node[key]` while audiocraft's __init__ builds its losses: its loss builder does not
    know `mmd` and would fail on `losses.mmd`. The key is restored right after."""
    if key not in node:
        yield
        return
    value = node[key]
    with omegaconf.open_dict(node):
        del node[key]
    try:
        yield
    finally:
        with omegaconf.open_dict(node):
            node[key] = value


class CompressionSolver(finite_steps.FiniteStepsMixin, WeightsOnlyCheckpointMixin, compression.CompressionSolver):
    """audiocraft's CompressionSolver with checkpoints that load with `weights_only=True`, and
    `model_from_checkpoint` resolving `//sig/` in our Dora folder (audiocraft's resolver imports
    `audiocraft.train`, which cannot load without audiocraft's source config tree).

    It accepts our configs' `losses.mmd` key when it is 0 (the independence loss is the
    `compression_mmd` solver's job). It adds:
    - the non-finite guard (`finite_steps.py`): a step whose batch or gradients are not finite is skipped and
      logged with its files, past `finite_steps.max_skipped` the run stops, no non-finite state is written;
    - the `codec_training` block, applied to the model right after audiocraft builds it
      (`models/codec_training.py`: initialization and dead-code replacement that let small codecs learn);
    - liveness metrics (`metrics/liveness.py`: SI-SNR in dB, log-mel correlation, output/output
      correlation, code perplexity) in the valid stage (`liveness.valid_batches` batches) and the
      evaluate stage (all batches), and a warning when the codec looks collapsed.
    - with `metrics.fad.use`, `fad_musicnn` of reconstructions vs originals in the evaluate stage
      (`audiocraft_mmd.solvers.music_metrics`).
    """
    def __init__(self, cfg: omegaconf.DictConfig):
        if type(self) is CompressionSolver and cfg.losses.get('mmd', 0):
            raise ValueError(f"losses.mmd={cfg.losses.mmd} but solver=compression ignores the independence loss; "
                             "use solver=compression_mmd")
        music_metrics.check_music_metrics(cfg, generation=False)
        take_source_architecture(cfg)  # before build_model (no-op when the config checks already ran)
        self.finetune = FinetuneConfig.parse(cfg)
        with _without_key(cfg.losses, 'mmd'):
            super().__init__(cfg)

    def build_model(self):
        """audiocraft's, with the model from our builder (`models/builders.py`: our quantizers too)."""
        from audiocraft.solvers import builders as solver_builders
        self.model = model_builders.get_compression_model(self.cfg).to(self.device)
        # In place, before the EMA and any checkpoint restore (both come after build_model).
        for action in codec_training.apply_codec_training(self.model, self.cfg.get('codec_training')):
            self.logger.info("codec_training: %s", action)
        if self.finetune.trainable == 'encoder':
            count = encoder_only.freeze_all_but_encoder(self.model)
            self.logger.info("finetune: encoder only (decoder and %d codebooks frozen)", count)
        trainable = [param for param in self.model.parameters() if param.requires_grad]
        self.optimizer = solver_builders.get_optimizer(trainable, self.cfg.optim)
        self.register_stateful('model', 'optimizer')
        self.register_best_state('model')
        self.register_ema('model')

    def state_dict(self):  # type: ignore[override]
        """The checkpoint's `xp.cfg` is Dora's (the overrides); under `finetune.architecture=checkpoint` it gets the
        architecture taken from the source too, so the checkpoint loads alone (loaders, export, MusicGen's
        tokenizer) without the release it started from."""
        state = super().state_dict()
        if self.finetune.architecture == 'checkpoint' and isinstance(state.get('xp.cfg'), dict):
            cfg = omegaconf.OmegaConf.create(state['xp.cfg'])
            for key, value in audiocraft_architecture(self.cfg).items():
                omegaconf.OmegaConf.update(cfg, key, value, force_add=True)
            state['xp.cfg'] = omegaconf.OmegaConf.to_container(cfg, resolve=False)
        return state

    def initialize_ema(self):
        """audiocraft's; with encoder-only training, the EMA keeps the frozen tensors as they are (bit for bit)."""
        super().initialize_ema()
        if self.ema is not None and self.finetune.trainable == 'encoder':
            self.ema = FrozenAwareEMA(self._ema_sources, {'model': encoder_only.frozen_names(self.model)},
                                      decay=self.ema.decay, device=self.ema.device)

    # audiocraft's `continue_from` path resolver (`audiocraft.utils.checkpoint.resolve_checkpoint_path`)
    # starts with `from audiocraft import train`, which builds audiocraft's own hydra main: inside a `dora run`
    # of ours, hydra is already initialized and the import raises ("GlobalHydra is already initialized"),
    # for a sig and a path alike. Its `//pretrained/NAME` branch does not resolve anything: it asks
    # `load_from_pretrained(NAME)` for the state, then keeps only the best state exactly as for another XP's
    # checkpoint. So every `continue_from` is handed to audiocraft through that branch, and resolved here
    # (`models/codec_source.py`: releases in transformers' format, local folders, sigs, checkpoints, exports).
    _CONTINUE = PRETRAINED_PREFIX + 'continue_from:'

    def load_checkpoints(self, load_best: bool = False, ignore_state_keys: tp.List[str] = []) -> tp.Optional[dict]:
        """audiocraft's, with `continue_from` resolved by `models.codec_source` (see `_CONTINUE`); audiocraft then
        keeps only the model's weights (fresh optimizer, epoch 1). A run that has its own checkpoint resumes from
        it."""
        ref = self.cfg.get('continue_from')
        if not (isinstance(ref, str) and ref) or self.checkpoint_path(use_fsdp=False).exists():
            return super().load_checkpoints(load_best, ignore_state_keys)
        with omegaconf.open_dict(self.cfg):
            self.cfg.continue_from = self._CONTINUE + ref
        try:
            return super().load_checkpoints(load_best, ignore_state_keys)
        finally:
            with omegaconf.open_dict(self.cfg):
                self.cfg.continue_from = ref

    def load_from_pretrained(self, name: str) -> dict:
        """The weights of the `continue_from` source, in audiocraft's layout, checked against our model (audiocraft's
        converter fails on transformers 5's parametrized weight norm: `compat/hf_encodec.py`)."""
        prefix = self._CONTINUE[len(PRETRAINED_PREFIX):]
        ref = name[len(prefix):] if name.startswith(prefix) else name
        source = resolve_source(ref)
        self.logger.info("Continuing from provided checkpoint: %s (%s format, %s)", ref, source.kind, source.location)
        return {'best_state': {'model': source.weights(self.model.state_dict())}}

    def run_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        """audiocraft's step; during `codec_training.quantizer_warmup` the DAC quantizer's residual mix is set
        from the update count first (so a resumed run continues the schedule). A run that starts from another
        XP's weights (`continue_from`, e.g. a reproduce branch) has a trained quantizer: no warm-up.
        With `finetune.trainable=encoder`, the codebooks leave the step as they entered it (across ranks too)."""
        warmup = self.cfg.get('codec_training', {}).get('quantizer_warmup', 0)
        if warmup and self.is_training and not self.cfg.get('continue_from'):
            update = (self.epoch - 1) * self.cfg.optim.updates_per_epoch + idx
            self.model.quantizer.residual_mix = codec_training.residual_mix(update, warmup)
            metrics['residual_mix'] = self.model.quantizer.residual_mix
        if self.is_training and self.finetune.trainable == 'encoder':
            with encoder_only.frozen_buffers_kept(self.model):
                return super().run_step(idx, batch, metrics)
        return super().run_step(idx, batch, metrics)

    def valid(self):
        metrics = super().valid()
        batches = self.cfg.get('liveness', {}).get('valid_batches', 0)
        if batches:
            metrics.update(self.measure_liveness('valid', batches))
        return metrics

    def evaluate(self):
        metrics = super().evaluate()
        metrics.update(self.measure_liveness('evaluate'))
        metrics.update(music_metrics.evaluate_reconstruction_fad(self))
        return metrics

    @property
    def has_codebooks(self) -> bool:
        """See `models.builders.has_codebooks` (False under `encodec.quantizer=no_quant`)."""
        return model_builders.has_codebooks(self.cfg)

    def measure_liveness(self, split: str, max_batches: tp.Optional[int] = None) -> tp.Dict[str, float]:
        """Liveness metrics of the model on `split` (at most `max_batches` batches), averaged over ranks;
        warns when the codec looks collapsed."""
        self.model.eval()
        with_codes = self.has_codebooks
        liveness = Liveness(self.cfg.sample_rate, self.model.cardinality if with_codes else None)
        with torch.no_grad():
            for idx, batch in enumerate(self.dataloaders[split]):
                if max_batches is not None and idx >= max_batches:
                    break
                x = batch.to(self.device)
                qres = self.model(x)
                liveness.update(x, qres.x, qres.codes if with_codes else None)
        metrics = flashy.distrib.average_metrics(liveness.compute())
        reason = looks_collapsed(metrics)
        if reason:
            self.logger.warning("The codec looks collapsed at epoch %d (%s): %s. See docs/codec_collapse.md.",
                                self.epoch, split, reason)
        metrics['collapsed'] = float(reason is not None)
        return metrics

    @staticmethod
    def model_from_checkpoint(checkpoint_path: tp.Any, device: tp.Any = 'cpu'):
        """Compression model from `//sig/SIG`, a checkpoint, an exported file or `//pretrained/NAME`."""
        from ..models.loaders import load_compression_model
        return load_compression_model(checkpoint_path, device=str(device))

    @staticmethod
    def wrapped_model_from_checkpoint(cfg: omegaconf.DictConfig, checkpoint_path: tp.Any, device: tp.Any = 'cpu'):
        """`model_from_checkpoint` (ours: our quantizers and codecs too), wrapped by audiocraft's
        `get_wrapped_compression_model` (`compression_model_n_q`, stereo interleaving). audiocraft's version
        calls audiocraft's own `CompressionSolver.model_from_checkpoint`, which knows neither."""
        from audiocraft.models.builders import get_wrapped_compression_model
        return get_wrapped_compression_model(CompressionSolver.model_from_checkpoint(checkpoint_path, device), cfg)
