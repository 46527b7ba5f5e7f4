"""A renormalizing EnCodec seen by a language model as a codec without a volume scale.

An EnCodec trained with `encodec.renormalize=true` (our CPU recipe) encodes each segment divided by
its RMS and returns that RMS as a `scale` beside the codes. audiocraft's MusicGen asserts that
`encode` returns no scale ("Scaled compression model not supported with LM"), and its generation
decodes with `scale=None`, which would give audio at unit RMS (clipping). The tokens of such a codec
describe loudness-normalized audio, so an LM over them models music at one loudness: this wrapper
drops the scale when encoding and decodes at a fixed volume (by default the loudness the data builder
normalizes every piece to, -20 dBFS RMS). Reconstruction outside the LM (the codec's own forward)
keeps the per-segment scale.
"""
import typing as tp

import torch

from audiocraft.models.encodec import CompressionModel

from ..data.signal import TARGET_RMS_DBFS

DEFAULT_VOLUME = 10 ** (TARGET_RMS_DBFS / 20)  # RMS of the data builder's pieces (0.1)


class FixedVolumeCompressionModel(CompressionModel):
    """`model`'s codes without its scale; decoding at RMS `volume` (see the module docstring).

    Args:
        model (CompressionModel): a codec whose `encode` returns a scale (`renormalize=True`).
        volume (float): RMS of the decoded audio, in full-scale units (0.1 = -20 dBFS).
    """
    def __init__(self, model: CompressionModel, volume: float = DEFAULT_VOLUME):
        super().__init__()
        if not volume > 0:
            raise ValueError(f"compression_model_volume must be > 0 (an RMS in full-scale units), got {volume!r}")
        self.model = model
        self.volume = float(volume)

    def forward(self, x: torch.Tensor):
        return self.model(x)

    def encode(self, x: torch.Tensor) -> tp.Tuple[torch.Tensor, None]:
        """x: [B, C, T] -> codes [B, K, frames] of x at unit RMS, and no scale."""
        codes, _ = self.model.encode(x)
        return codes, None

    def decode(self, codes: torch.Tensor, scale: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
        """codes: [B, K, frames] -> audio [B, C, T] at RMS `volume` (or at `scale` when one is given)."""
        if scale is None:
            scale = torch.full((codes.shape[0], 1), self.volume, device=codes.device)
        return self.model.decode(codes, scale)

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode_latent(codes)

    @property
    def channels(self) -> int:
        return self.model.channels

    @property
    def frame_rate(self) -> float:
        return self.model.frame_rate

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def cardinality(self) -> int:
        return self.model.cardinality

    @property
    def num_codebooks(self) -> int:
        return self.model.num_codebooks

    @property
    def total_codebooks(self) -> int:
        return self.model.total_codebooks

    def set_num_codebooks(self, n: int) -> None:
        self.model.set_num_codebooks(n)


def for_language_model(model: CompressionModel, volume: float = DEFAULT_VOLUME) -> CompressionModel:
    """`model` wrapped when it renormalizes (its `encode` returns a scale), else `model` itself."""
    if getattr(model, 'renormalize', False):
        return FixedVolumeCompressionModel(model, volume)
    return model
