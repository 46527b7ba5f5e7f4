"""Product vector quantizer (PVQ) and PVQ with hierarchical dropout (paper, Appendix C).

The latent's D dimensions are split into K contiguous groups of D/K; group k is quantized by its
own codebook (audiocraft's `VectorQuantization`, so EMA updates, k-means init, dead-code expiry and
`compat.codebook_expiry.ExpiringCodebook` apply unchanged). There is no residual: code k depends on
group k's dimensions only, and the quantized latent is the concatenation of the K codewords.

PVQ-dropout: in training, each batch item draws k ~ U{1..K} and the quantized groups > k are set to 0
before decoding ("using only the first k codebooks ... putting the other codes to 0"). Drawn per
item, not per batch as audiocraft's RVQ `q_dropout` does: PVQ quantizes all groups anyway (RVQ saves
the skipped stages' work by drawing one k per batch), and per item every update trains the decoder at
every prefix length instead of spending whole steps at k=1, which lowers the variance of the update
(DAC's quantizer dropout is per item too). All groups are still quantized (EMA update, commitment) so
that every codebook tracks its group's distribution: the codes (the LM's tokens) are always all K.

Fewer active codebooks (`set_num_codebooks(n)`, MusicGen's `compression_model_n_q`) mean the same
thing as dropout at k=n: groups >= n are neither encoded nor decoded, and decode to 0.
"""
import math
import typing as tp

import torch
from audiocraft.quantization.base import BaseQuantizer, QuantizedResult
from audiocraft.quantization.core_vq import VectorQuantization
from torch import nn

from .codebook_count import SelectableCodebooks


class ProductVectorQuantizer(SelectableCodebooks, BaseQuantizer):
    """K codebooks, each over its own D/K dimensions of the latent; audiocraft's quantizer interface.

    Args:
        dimension: latent dimension D (a multiple of n_q).
        n_q: number of groups/codebooks K.
        bins: entries per codebook.
        dropout: hierarchical dropout in training (see module docstring).
        decay, kmeans_init, kmeans_iters, threshold_ema_dead_code: as audiocraft's RVQ, per codebook.
    """
    codec_name = 'PVQ'
    STREAM_KINDS = ('quantized', 'residual')  # MMD streams (`streams`), as audiocraft's RVQ

    def __init__(self, dimension: int = 128, n_q: int = 4, bins: int = 1024, dropout: bool = False,
                 decay: float = 0.99, kmeans_init: bool = True, kmeans_iters: int = 10,
                 threshold_ema_dead_code: int = 2):
        super().__init__()
        if n_q < 1 or dimension % n_q:
            raise ValueError(f"PVQ needs the latent dimension ({dimension}) to be a multiple of n_q ({n_q})")
        self.dimension, self.max_n_q, self.n_q, self.bins = dimension, n_q, n_q, bins
        self.group_dim = dimension // n_q
        self.dropout = dropout
        self.groups = nn.ModuleList([
            VectorQuantization(dim=self.group_dim, codebook_size=bins, decay=decay, kmeans_init=kmeans_init,
                               kmeans_iters=kmeans_iters, threshold_ema_dead_code=threshold_ema_dead_code,
                               channels_last=False)
            for _ in range(n_q)])

    def split(self, x: torch.Tensor) -> tp.List[torch.Tensor]:
        """The K groups of x [B, D, T], each [B, D/K, T] (views)."""
        if x.dim() != 3 or x.shape[1] != self.dimension:
            raise ValueError(f"PVQ expects x of shape [B, {self.dimension}, T], got {tuple(x.shape)}")
        return list(x.split(self.group_dim, dim=1))

    def _merge(self, parts: tp.Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate the first len(parts) quantized groups [B, D/K, T], zeros for the rest: [B, D, T]."""
        missing = self.max_n_q - len(parts)
        if missing:
            ref = parts[0]
            parts = list(parts) + [ref.new_zeros(ref.shape[0], self.group_dim * missing, ref.shape[-1])]
        return torch.cat(list(parts), dim=1)

    def dropout_mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """[B, D, 1] mask keeping the first k groups of each item, k ~ U{1..n_q} per item.

        Drawn from torch's global CPU generator, like audiocraft's RVQ dropout (same draws on any device)."""
        keep = torch.randint(1, self.n_q + 1, (batch_size, 1)).to(device)
        group = torch.arange(self.max_n_q, device=device)[None, :]
        mask = (group < keep).float()  # [B, K]
        return mask.repeat_interleave(self.group_dim, dim=1)[:, :, None]

    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        """x: [B, D, T] -> QuantizedResult(x=[B, D, T], codes=[B, n_q, T], bandwidth, penalty)."""
        parts, codes, losses = [], [], []
        for group, part in zip(self.groups[:self.n_q], self.split(x)):
            quantized, code, loss = group(part)
            parts.append(quantized)
            codes.append(code)
            losses.append(loss)
        quantized = self._merge(parts)
        bw_per_q = math.log2(self.bins) * frame_rate / 1000
        kept = torch.full((x.shape[0],), float(self.n_q), device=x.device)
        if self.training and self.dropout:
            mask = self.dropout_mask(x.shape[0], x.device)
            quantized = quantized * mask
            kept = mask[:, ::self.group_dim, 0].sum(dim=1)
        penalty = torch.mean(torch.stack([loss.mean() for loss in losses]))
        return QuantizedResult(quantized, torch.stack(codes, dim=1), kept * bw_per_q, penalty=penalty)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, D, T] -> codes [B, n_q, T] (code k from group k's dimensions only)."""
        return torch.stack([group.encode(part) for group, part in zip(self.groups[:self.n_q], self.split(x))], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, k, T] (k <= K) -> quantized latent [B, D, T], groups >= k set to 0."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.max_n_q:
            raise ValueError(f"PVQ decodes codes of shape [B, k<={self.max_n_q}, T], got {tuple(codes.shape)}")
        return self._merge([group.decode(codes[:, k]) for k, group in enumerate(self.groups[:codes.shape[1]])])

    @property
    def codebook_layers(self) -> nn.ModuleList:
        """The modules whose forward sees stream k's input (the MMD bank's forward hooks): the groups."""
        return self.groups

    def streams(self, emb: torch.Tensor, kind: str = 'quantized', n_q: tp.Optional[int] = None,
                with_codes: bool = False) -> tp.Any:
        """MMD streams of emb [B, D, T]: [B, K, D/K, T], group k's codeword straight-through to its dimensions
        (`quantized`) or those dimensions (`residual`, see `losses.streams`); with ``with_codes`` also the
        [B, K, T] codes. Encodes only: no EMA update, k-means init or dead-code replacement."""
        if kind not in self.STREAM_KINDS:
            raise ValueError(f"Unknown stream kind {kind!r} for a PVQ; expected one of {self.STREAM_KINDS}")
        streams, codes = [], []
        for group, part in zip(self.groups[:n_q or self.n_q], self.split(emb)):
            codes.append(group.encode(part))
            if kind == 'quantized':
                codeword = group.decode(codes[-1]).detach()
                part = part + (codeword - part).detach()
            streams.append(part)
        streams = torch.stack(streams, dim=1)
        return (streams, torch.stack(codes, dim=1)) if with_codes else streams
