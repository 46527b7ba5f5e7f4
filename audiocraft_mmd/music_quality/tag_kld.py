"""Tag KL divergence on musicnn: audiocraft's `KLDivergenceMetric` with musicnn's tags as the label model.

musicnn is a multi-label tagger: its 50 outputs are independent sigmoids, not a distribution. A
clip's label distribution is the mean of the sigmoids over its 3 s patches, divided by its sum (the
share of the clip's total tag mass carried by each tag). Unlike a softmax of the logits this keeps
the scale the network was trained in (binary cross-entropy per tag), so tags the network deems absent
stay near zero. audiocraft's `kl_divergence(pred, target)` is KL(target || pred) with 1e-6 added to
pred; `cross_kl_divergence` uses the same definition.
"""
import typing as tp

import torch
from audiocraft.metrics.kld import KLDivergenceMetric

_EPS = 1e-6  # audiocraft.metrics.kld.kl_divergence's epsilon


def tag_distribution(tag_probs: torch.Tensor) -> torch.Tensor:
    """Label distribution [50] of one clip from its per-patch tag sigmoids [N, 50]."""
    assert tag_probs.dim() == 2 and tag_probs.shape[0] > 0, f"expected [N, tags] with N > 0, got {tag_probs.shape}"
    mean = tag_probs.double().mean(dim=0)
    return (mean / mean.sum()).float()


def cross_kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p_a || q_b) for every pair of distributions p [A, K], q [B, K] -> [A, B] (float64)."""
    p, q = p.double(), q.double()
    entropy_term = (p * torch.log(p.clamp(min=1e-30))).sum(dim=1, keepdim=True)  # 0 log 0 = 0
    return entropy_term - p @ torch.log(q + _EPS).T


class MusicnnKLDivergenceMetric(KLDivergenceMetric):
    """Paired tag KL between generated (preds) and reference (targets) audio with musicnn's tags.

    `update(preds, targets, sizes, sample_rates)` as in audiocraft: audio [B, C, T] at any rate >= 16 kHz,
    each item at least 3 s (one patch); silence allowed, NaN raises. `compute()` returns audiocraft's
    keys: 'kld' (= 'kld_pq', KL(reference || generated)), 'kld_qp', 'kld_both'.

    Args:
        model (str): 'MSD_musicnn' or 'MTT_musicnn'.
        hop_seconds (float): patch hop (see `MusicnnEmbedder`).
    """
    def __init__(self, model: str = 'MSD_musicnn', hop_seconds: float = 3.0):
        super().__init__()
        self.model, self.hop_seconds = model, hop_seconds
        self._embedder: tp.Any = None

    def _get_label_distribution(self, x: torch.Tensor, sizes: torch.Tensor,
                                sample_rates: torch.Tensor) -> tp.Optional[torch.Tensor]:
        from .musicnn.embedding import MusicnnEmbedder
        if self._embedder is None:
            self._embedder = MusicnnEmbedder(self.model, hop_seconds=self.hop_seconds, device=self.device)
        distributions = []
        for i, wav in enumerate(x):
            out = self._embedder(wav[..., :int(sizes[i])], int(sample_rates[i]), name=f'item {i}', allow_silence=True)
            distributions.append(tag_distribution(out.tag_probs))
        return torch.stack(distributions).to(self.device)
