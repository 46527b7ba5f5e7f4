"""Spectral flatness (Wiener entropy): how noise-like a sound is, independent of any learned embedding.

Per STFT frame, flatness = geometric mean / arithmetic mean of the power spectrum over bins (0 for a pure
tone, 1 for a flat spectrum). For Gaussian white noise each bin's power is exponentially distributed around
a flat mean, and E[log P] = log E[P] - gamma (Euler's constant), so its flatness is e^-gamma ~ 0.561 up to
O(1/bins) terms; music, whose energy sits in harmonics, scores far lower. It is the known-answer axis
beside FAD: a generation set whose FAD is close to real music's but whose flatness is near noise's has
fooled the embedding, not the ear.
"""
import typing as tp

import torch

EPS = 1e-10  # power floor (digital silence would give log 0)


def frame_flatness(wav: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Flatness of every STFT frame [F] of a mono wav [L] (or [1, L]), over all bins but DC."""
    if wav.dim() == 2 and wav.shape[0] == 1:
        wav = wav[0]
    if wav.dim() != 1 or wav.shape[-1] < n_fft:
        raise ValueError(f"frame_flatness takes a mono wav [L] with L >= n_fft={n_fft}, got {tuple(wav.shape)}")
    spec = torch.stft(wav.double(), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=False, return_complex=True)
    power = spec.abs().square()[1:] + EPS  # [bins, F]
    return power.log().mean(0).exp() / power.mean(0)


def median_flatness(clips: tp.Sequence[torch.Tensor], **kwargs) -> float:
    """Median frame flatness over all frames of all clips (mono wavs [L] or [1, L])."""
    return float(torch.cat([frame_flatness(c, **kwargs) for c in clips]).median())
