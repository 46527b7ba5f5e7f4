"""audiocraft's CompressionSolver, made to work on torch 2.11 (see `audiocraft_mmd.compat`)."""
import contextlib
import typing as tp

import omegaconf

from audiocraft.solvers import compression

from ..compat.checkpoints import WeightsOnlyCheckpointMixin
from ..metrics import music_quality


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


class CompressionSolver(WeightsOnlyCheckpointMixin, compression.CompressionSolver):
    """audiocraft's CompressionSolver with checkpoints that load with `weights_only=True`, and
    `model_from_checkpoint` resolving `//sig/` in our Dora folder (audiocraft's resolver imports
    `audiocraft.train`, which cannot load without audiocraft's source config tree).

    It accepts our configs' `losses.mmd` key when it is 0 (the independence loss is the
    `compression_mmd` solver's job). With `metrics.fad.use` the evaluate stage adds `fad_musicnn`,
    reconstructions vs originals (`audiocraft_mmd.metrics.music_quality`).
    """
    def __init__(self, cfg: omegaconf.DictConfig):
        if type(self) is CompressionSolver and cfg.losses.get('mmd', 0):
            raise ValueError(f"losses.mmd={cfg.losses.mmd} but solver=compression ignores the independence loss; "
                             "use solver=compression_mmd")
        music_quality.check_music_metrics(cfg, generation=False)
        with _without_key(cfg.losses, 'mmd'):
            super().__init__(cfg)

    def evaluate(self):
        return {**super().evaluate(), **music_quality.evaluate_reconstruction_fad(self)}

    @staticmethod
    def model_from_checkpoint(checkpoint_path: tp.Any, device: tp.Any = 'cpu'):
        """Compression model from `//sig/SIG`, a checkpoint, an exported file or `//pretrained/NAME`."""
        from ..models.loaders import load_compression_model
        return load_compression_model(checkpoint_path, device=str(device))
