"""MusicGen(-MMD) solver: audiocraft's MusicGenSolver, loading its tokenizer with our loaders.

MusicGen-MMD (paper section 4.1) is MusicGen trained on the tokens of an EnCodec-MMD codec: the LM
side is unchanged, so this solver only fixes what breaks on torch 2.11 with our config tree.
"""
import contextlib

import omegaconf

from audiocraft.solvers import musicgen

from ..compat.checkpoints import WeightsOnlyCheckpointMixin
from ..config_validation import require
from . import music_metrics
from .compression import CompressionSolver
from .lm_finetune import (LMFinetuneConfig, continued_state, load_release, release_name, take_release_architecture,
                          with_built_blocks)


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
    take_release_architecture(cfg)  # continue_from=//pretrained/...: the release is read here (solvers/lm_finetune)


@contextlib.contextmanager
def _codecs_loaded_by_us():
    """Inside the block, `audiocraft.solvers.musicgen` resolves `CompressionSolver` to ours, whose
    `wrapped_model_from_checkpoint` (the only use `MusicGenSolver.build_model` makes of it) loads with our loader.
    Scoped to one `build_model` call (restored even on error), so audiocraft's module is unchanged outside it."""
    saved = musicgen.CompressionSolver
    musicgen.CompressionSolver = CompressionSolver
    try:
        yield
    finally:
        musicgen.CompressionSolver = saved


class MusicGenMMDSolver(WeightsOnlyCheckpointMixin, musicgen.MusicGenSolver):
    """audiocraft's MusicGenSolver with a codec loader that works with our Dora folder and torch 2.11.

    What it replaces, and why: audiocraft's `MusicGenSolver.build_model` loads the codec with
    `audiocraft.solvers.compression.CompressionSolver.wrapped_model_from_checkpoint`, which
    (1) resolves `//sig/SIG` through `audiocraft.train`, whose hydra decorator needs audiocraft's
    source config tree (not shipped in its wheel), and (2) `torch.load`s the solver checkpoint with
    torch's default `weights_only=True`, which refuses the omegaconf objects in checkpoints written
    by audiocraft's own solvers, and (3) builds the codec with audiocraft's builder, which knows neither our
    product quantizer (`encodec.quantizer: pvq`) nor our DAC codec (`compression_model: dac`). `build_model`
    here runs audiocraft's `build_model` with the codec loaded by our `CompressionSolver.wrapped_model_from_checkpoint`
    (`audiocraft_mmd.models.loaders`: //sig/SIG in our Dora folder, an XP folder, a solver checkpoint or an exported
    file).
    Everything else (the LM, its optimizer, the `compression_model_n_q` wrapping, the codec/LM consistency
    checks) is audiocraft's code.
    `//pretrained/NAME` references go to audiocraft's `CompressionModel.get_pretrained`. A codec trained with
    `encodec.renormalize=true` is wrapped so that its tokens carry no scale and generations decode at
    `compression_model_volume` (`audiocraft_mmd.models.fixed_volume`).

    The evaluate stage adds the offline music metrics (`metrics.fad.use`, `metrics.kld.use`:
    `fad_musicnn`, `kld_musicnn`; see `audiocraft_mmd.solvers.music_metrics`), checked at start.

    Checkpoints store `xp.cfg` as a plain container (`WeightsOnlyCheckpointMixin`), so they resume,
    export and load with `weights_only=True`.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        music_metrics.check_music_metrics(cfg, generation=True)
        take_release_architecture(cfg)  # no-op when the config checks already ran
        super().__init__(cfg)

    def state_dict(self):  # type: ignore[override]
        """Continued from a release, the checkpoint's `xp.cfg` gets the LM blocks taken from it (`lm_finetune`)."""
        state = super().state_dict()
        if release_name(self.cfg) is not None and isinstance(state.get('xp.cfg'), dict):
            state['xp.cfg'] = with_built_blocks(state['xp.cfg'], self.cfg)
        return state

    def load_from_pretrained(self, name: str) -> dict:
        """audiocraft's reads a released LM with torch's default loader and expects the config to match it; ours
        reads it weights-only, and starts a replaced conditioner from the model's own weights (`lm_finetune`)."""
        conditioner = LMFinetuneConfig.parse(self.cfg).conditioner
        state = continued_state(load_release(name)['best_state'], self.model.state_dict(), conditioner)
        return {'best_state': {'model': state}}

    def evaluate(self) -> dict:
        return {**super().evaluate(), **music_metrics.evaluate_generation_metrics(self)}

    def build_model(self) -> None:
        from ..models.fixed_volume import for_language_model
        with _codecs_loaded_by_us():
            super().build_model()
        self.compression_model = for_language_model(self.compression_model, self.cfg.compression_model_volume)
