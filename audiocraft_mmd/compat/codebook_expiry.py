"""Dead-code replacement that takes effect (audiocraft 1.3.0's `EuclideanCodebook` never really replaces).

audiocraft's `EuclideanCodebook.forward` (quantization/core_vq.py) calls `expire_codes_`, whose
`replace_` writes random batch vectors into `embed` only; a few lines later the same forward
recomputes `embed = embed_avg / smoothed cluster_size` from the EMA statistics, which still hold
the dead code's stale state, so the replacement is overwritten before any vector can be assigned to
it (facebookresearch/encodec issue #61, "Codebook expiration does not take effect at all";
vector-quantize-pytorch resets the EMA statistics of replaced codes for this reason, its issue #45).

`ExpiringCodebook` also resets `embed_avg` to the sampled vector and `cluster_size` to 1, so the
EMA update of the same forward keeps the replacement (`embed_avg / cluster_size` = the sample).
Only training changes: `encode`/`decode`/state-dict keys are audiocraft's, so exported models load
as plain audiocraft EnCodec models. `use_expiring_codebooks` swaps the codebooks of a built model.
"""
import torch
from audiocraft.quantization import core_vq


class ExpiringCodebook(core_vq.EuclideanCodebook):
    """audiocraft's EuclideanCodebook whose dead-code replacement survives the EMA update."""

    def replace_(self, samples: torch.Tensor, mask: torch.Tensor) -> None:
        """Replace the codes where `mask` [codebook_size] is true by random rows of `samples` [N, D]."""
        sampled = core_vq.sample_vectors(samples, self.codebook_size)
        rows = mask[:, None]
        self.embed.data.copy_(torch.where(rows, sampled, self.embed))
        self.embed_avg.data.copy_(torch.where(rows, sampled, self.embed_avg))
        self.cluster_size.data.copy_(torch.where(mask, torch.ones_like(self.cluster_size), self.cluster_size))


def _expiring_copy(codebook: core_vq.EuclideanCodebook) -> ExpiringCodebook:
    new = ExpiringCodebook(dim=codebook.embed.shape[1], codebook_size=codebook.codebook_size,
                           kmeans_init=not bool(codebook.inited.item()), kmeans_iters=codebook.kmeans_iters,
                           decay=codebook.decay, epsilon=codebook.epsilon,
                           threshold_ema_dead_code=codebook.threshold_ema_dead_code)
    new.load_state_dict(codebook.state_dict())
    return new.to(codebook.embed.device)


def use_expiring_codebooks(model: torch.nn.Module) -> int:
    """Give every VectorQuantization layer of `model` an ExpiringCodebook (same state); returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, core_vq.VectorQuantization) and type(module._codebook) is core_vq.EuclideanCodebook:
            module._codebook = _expiring_copy(module._codebook)
            count += 1
    return count
