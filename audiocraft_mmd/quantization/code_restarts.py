"""Dead-code restarts for codebooks learned by gradient (DAC's quantizer).

Why: a small DAC codec collapses on CPU (`compression/dac_mmd_cpu`, docs/codec_collapse.md). Its codebooks
are `nn.Embedding`s moved only by the codebook loss toward the projected latents that picked them, so an
entry that no frame picks never moves again; within 200 updates the codes in use fall to 2-4 per codebook
and the decoder gets a constant. audiocraft's EMA codebooks have dead-code replacement for this
(`compat.codebook_expiry` makes it take effect); DAC has none.

`CodeRestarts` keeps, per codebook, an exponential moving average (decay `decay`) of how many frames of a
batch picked each entry, the statistic audiocraft's codebooks compare with `threshold_ema_dead_code`. After
a training forward, entries whose average fell below `threshold` are overwritten with random frames of
that batch's projected latents (the raw vectors the stage compared with its codebook; lookup is by cosine,
and the raw vector is what `out_proj` then decodes), and their average is reset to the batch's mean count
per entry. The averages start at that mean, so a never-picked entry is restarted after about
log(mean / threshold) / (1 - decay) updates. The averages are not saved (non-persistent buffer): state-dict
keys stay DAC's, and a resumed run re-warms them.
"""
import math

import torch
from torch import nn


class CodeRestarts(nn.Module):
    """Usage averages of `num_codebooks` codebooks of `codebook_size` entries, and the restarts they trigger.

    Args:
        num_codebooks, codebook_size: the quantizer's K and bins.
        decay: EMA decay of the per-batch pick counts.
        threshold: an entry picked fewer than this many times per batch, on average, is restarted.
    """
    def __init__(self, num_codebooks: int, codebook_size: int, decay: float = 0.99, threshold: float = 2.):
        super().__init__()
        if not 0 < decay < 1 or threshold <= 0:
            raise ValueError(f"CodeRestarts needs 0 < decay < 1 and threshold > 0, got {decay}, {threshold}")
        self.decay, self.threshold = decay, threshold
        self.register_buffer('usage', torch.full((num_codebooks, codebook_size), math.nan), persistent=False)

    @torch.no_grad()
    def forward(self, codebooks, codes: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Update the averages and restart dead entries in place.

        codebooks: K tensors [bins, d] (the entries, changed in place); codes: [B, K, T] long;
        latents: [B, K * d, T], stage k's projected latents in channels k*d..(k+1)*d.
        Returns the number of entries restarted per codebook, [K]."""
        num_codebooks, bins = self.usage.shape
        if codes.dim() != 3 or codes.shape[1] != num_codebooks or latents.shape[1] % num_codebooks:
            raise ValueError(f"CodeRestarts of {num_codebooks} codebooks got codes {tuple(codes.shape)} and "
                             f"latents {tuple(latents.shape)}")
        frames = codes.shape[0] * codes.shape[2]
        counts = torch.stack([torch.bincount(codes[:, k].flatten(), minlength=bins) for k in range(num_codebooks)])
        mean_count = frames / bins
        self.usage.copy_(torch.where(torch.isnan(self.usage), torch.full_like(self.usage, mean_count), self.usage))
        self.usage.mul_(self.decay).add_(counts.to(self.usage), alpha=1 - self.decay)
        dead = self.usage < self.threshold
        per_stage = latents.reshape(latents.shape[0], num_codebooks, -1, latents.shape[-1])
        for k in torch.nonzero(dead.any(dim=1)).flatten().tolist():
            rows = per_stage[:, k].transpose(1, 2).reshape(frames, -1)  # [B * T, d]
            picks = torch.randint(frames, (int(dead[k].sum()),), device=rows.device)
            codebooks[k][dead[k]] = rows[picks].to(codebooks[k].dtype)
            self.usage[k][dead[k]] = mean_count
        return dead.sum(dim=1)
