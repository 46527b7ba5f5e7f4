"""MusicGen(-MMD) solver: audiocraft's MusicGenSolver, loading its tokenizer with our loaders.

MusicGen-MMD (paper section 4.1) is MusicGen trained on the tokens of an EnCodec-MMD codec: the LM
side is unchanged, so this solver only fixes what breaks on torch 2.11 with our config tree.
"""
import contextlib
from pathlib import Path
import tempfile
import typing as tp

import omegaconf

from audiocraft.solvers import musicgen

from ..compat.checkpoints import WeightsOnlyCheckpointMixin
from ..config_validation import require
from ..metrics import music_quality


def validate_config(cfg: omegaconf.DictConfig) -> None:
    """Validate what the MusicGen solvers need before loading their codec."""
    ref = cfg.get('compression_model_checkpoint')
    require(isinstance(ref, str) and len(ref) > 0, 'compression_model_checkpoint', ref,
            "set the tokenizer: //sig/SIG of a compression XP, a checkpoint, an exported file or //pretrained/NAME "
            "(it is null in the config so that dora can sign the override)")
    volume = cfg.get('compression_model_volume')
    require(isinstance(volume, (int, float)) and not isinstance(volume, bool) and volume > 0,
            'compression_model_volume', volume, "the RMS (full scale = 1) at which the LM's tokens of a "
            "renormalizing codec are decoded: a number > 0, e.g. 0.1 (-20 dBFS, the data builder's loudness)")


def check_audiocraft_can_build(package: dict, ref: str) -> None:
    """Refuse, with the reason, a codec that audiocraft's loader (which this solver hands the codec to) cannot
    build: one with our quantizers (`encodec.quantizer: pvq`), which only `audiocraft_mmd.models.builders`
    knows. Inference (`MusicGenMMD`, `load_compression_model`) loads such codecs; LM training does not yet."""
    from ..models.builders import OUR_QUANTIZERS, quantizer_name
    if 'xp.cfg' not in package:
        return
    name = quantizer_name(omegaconf.OmegaConf.create(package['xp.cfg']))
    if name in OUR_QUANTIZERS:
        raise NotImplementedError(f"compression_model_checkpoint={ref!r} is a codec with encodec.quantizer={name!r}: "
                                  "the MusicGen solver loads its codec through audiocraft's builder, which only "
                                  "knows rvq/no_quant; training an LM on these tokens is not supported yet")


@contextlib.contextmanager
def _temporarily(cfg: omegaconf.DictConfig, key: str, value: tp.Any):
    """Set `cfg[key] = value` inside the block only, so that the config stored in checkpoints
    (and the XP signature) keep the user's value."""
    old = cfg[key]
    cfg[key] = value
    try:
        yield
    finally:
        cfg[key] = old


class MusicGenMMDSolver(WeightsOnlyCheckpointMixin, musicgen.MusicGenSolver):
    """audiocraft's MusicGenSolver with a codec loader that works with our Dora folder and torch 2.11.

    What it replaces, and why: audiocraft's `MusicGenSolver.build_model` loads the codec with
    `audiocraft.solvers.compression.CompressionSolver.wrapped_model_from_checkpoint`, which
    (1) resolves `//sig/SIG` through `audiocraft.train`, whose hydra decorator needs audiocraft's
    source config tree (not shipped in its wheel), and (2) `torch.load`s the solver checkpoint with
    torch's default `weights_only=True`, which refuses the omegaconf objects in checkpoints written
    by audiocraft's own solvers. `build_model` here exports the codec named by
    `compression_model_checkpoint` (//sig/SIG in our Dora folder, an XP folder, a solver checkpoint
    or an exported file; see `audiocraft_mmd.export.compression_package`) to a temporary exported
    file and hands it to audiocraft as `//pretrained/<file>`, which audiocraft loads with
    `CompressionModel.get_pretrained` (weights only). Everything else (the LM, its optimizer, the
    `compression_model_n_q` wrapping, the codec/LM consistency checks) is audiocraft's code.
    `//pretrained/NAME` references go to audiocraft unchanged. A codec trained with
    `encodec.renormalize=true` is wrapped so that its tokens carry no scale and generations decode at
    `compression_model_volume` (`audiocraft_mmd.models.fixed_volume`).

    The evaluate stage adds the offline music metrics (`metrics.fad.use`, `metrics.kld.use`:
    `fad_musicnn`, `kld_musicnn`; see `audiocraft_mmd.metrics.music_quality`), checked at start.

    Checkpoints store `xp.cfg` as a plain container (`WeightsOnlyCheckpointMixin`), so they resume,
    export and load with `weights_only=True`.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        music_quality.check_music_metrics(cfg, generation=True)
        super().__init__(cfg)

    def evaluate(self) -> dict:
        return {**super().evaluate(), **music_quality.evaluate_generation_metrics(self)}

    def build_model(self) -> None:
        from ..export import compression_package, export_compression_model
        from ..models.fixed_volume import for_language_model
        ref = str(self.cfg.compression_model_checkpoint)
        if ref.startswith('//pretrained/'):
            super().build_model()
        else:
            package, _ = compression_package(ref)  # read once: checked, then written for audiocraft's loader
            check_audiocraft_can_build(package, ref)
            with tempfile.TemporaryDirectory(prefix='musicgen_mmd_codec_') as tmp:
                exported = export_compression_model(ref, Path(tmp) / 'compression_state_dict.bin', package)
                self.logger.info("Compression model %s (exported to %s for audiocraft's loader)", ref, exported)
                with _temporarily(self.cfg, 'compression_model_checkpoint', f'//pretrained/{exported}'):
                    super().build_model()
        self.compression_model = for_language_model(self.compression_model, self.cfg.compression_model_volume)
