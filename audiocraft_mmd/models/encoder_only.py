"""Encoder-only training of an EnCodec: the codebooks and the decoder stay exactly as loaded.

Fine-tuning a released codec this way keeps its tokens decodable by the released decoder (and meaningful to a
language model trained on them): only the encoder, i.e. which codes a sound gets, changes. The MMD's gradient
reaches only the encoder anyway (`losses/streams.py`); the reconstruction and adversarial losses reach the
encoder through the quantizer's straight-through estimator, which needs the quantizer in training mode.

What "frozen" takes, beyond `requires_grad=False` on the decoder:
- audiocraft's codebooks are EMA buffers that every training-mode forward updates (and k-means initializes,
  and dead-code expiry rewrites), so each `EuclideanCodebook` becomes a `FrozenCodebook`, which stays in eval
  mode whatever its parents are set to: the nearest-code lookup is the same, nothing is written;
- the solver's EMA of the model (`optim.ema`) mixes every tensor with its previous average, and
  x * (1 - w) + x * w is not always x in floating point: `frozen_names` lists the tensors the EMA must skip.
"""
import typing as tp

from audiocraft.quantization import core_vq
from torch import nn


class FrozenCodebook(core_vq.EuclideanCodebook):
    """audiocraft's EuclideanCodebook that never leaves eval mode: no EMA update, k-means init or expiry."""

    def train(self, mode: bool = True) -> 'FrozenCodebook':
        return super().train(False)


def _frozen_copy(codebook: core_vq.EuclideanCodebook) -> FrozenCodebook:
    frozen = FrozenCodebook(dim=codebook.embed.shape[1], codebook_size=codebook.codebook_size,
                            kmeans_init=False, decay=codebook.decay, epsilon=codebook.epsilon,
                            threshold_ema_dead_code=codebook.threshold_ema_dead_code)
    frozen.load_state_dict(codebook.state_dict())
    return frozen.to(codebook.embed.device).train(False)


def freeze_all_but_encoder(model: nn.Module) -> int:
    """Freeze the decoder's parameters and every codebook of `model` (an EnCodec with audiocraft's RVQ or our PVQ)
    in place; returns the number of codebooks frozen."""
    for name, module in model.named_children():
        if name != 'encoder':
            module.requires_grad_(False)
    count = 0
    for module in model.modules():
        if isinstance(module, core_vq.VectorQuantization) and not isinstance(module._codebook, FrozenCodebook):
            module._codebook = _frozen_copy(module._codebook)
            count += 1
    if not count:
        raise ValueError(f"{type(model).__name__} has no audiocraft codebooks to freeze (encoder-only training "
                         "needs an EnCodec with encodec.quantizer=rvq or pvq)")
    return count


def frozen_names(model: nn.Module) -> tp.Set[str]:
    """State-dict names of the tensors `freeze_all_but_encoder` froze: everything outside the encoder."""
    return {name for name in model.state_dict() if not name.startswith('encoder.')}
