"""MusicGen's "delay" codebook pattern as an alignment of frames, shared by the loss and the metrics.

audiocraft's ``DelayedPatternProvider`` (delays = 0, 1, ..., K - 1) puts, at sequence step t, the
code of codebook k from frame t - k. Aligned frame j below is the step t = j + K - 1, the first
step where every codebook holds a real frame: ``(c_0[t], c_1[t - 1], ..., c_{K-1}[t - K + 1])``,
the K tokens a delay-pattern LM predicts in parallel. Steps that would hold padding are dropped.
"""
import torch


def delay_align(x: torch.Tensor) -> torch.Tensor:
    """Delay-align codebooks (dim 1) along time (last dim), keeping the frames free of padding.

    Each item of the batch is its own sequence (no alignment across items).

    Args:
        x (torch.Tensor): [B, K, T] codes or [B, K, D, T] streams.
    Returns:
        torch.Tensor: same shape with ``T' = max(T - K + 1, 0)`` frames and
            ``out[:, k, ..., j] = x[:, k, ..., j + (K - 1) - k]``.
    """
    K, T = x.shape[1], x.shape[-1]
    length = max(T - K + 1, 0)
    return torch.stack([x[:, k, ..., K - 1 - k:K - 1 - k + length] for k in range(K)], dim=1)
