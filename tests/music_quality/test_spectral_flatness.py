import math

import pytest
import torch

from audiocraft_mmd.music_quality.spectral_flatness import frame_flatness, median_flatness


def test_white_noise_is_at_exp_minus_gamma():
    # exponential bin powers: E log P = log E P - gamma; with 512 bins per frame the ratio's own spread is
    # ~1/sqrt(512) relative per frame, and the median over ~600 frames is far tighter, so 0.03 is loose
    wav = torch.randn(160_000, generator=torch.Generator().manual_seed(0))
    assert median_flatness([wav]) == pytest.approx(math.exp(-0.5772156649), abs=0.03)


def test_a_tone_and_a_chord_are_far_from_flat():
    t = torch.arange(64_000) / 32_000
    tone = torch.sin(2 * math.pi * 440 * t)
    chord = sum(torch.sin(2 * math.pi * f * t) / (i + 1) for i, f in enumerate([220, 277.2, 329.6, 440, 660]))
    noise = torch.randn(64_000, generator=torch.Generator().manual_seed(1))
    assert median_flatness([tone]) < 0.05 and median_flatness([chord]) < 0.05
    assert median_flatness([chord + 0.3 * noise]) > median_flatness([chord])  # noise raises it


def test_rejects_stereo_or_short_input():
    with pytest.raises(ValueError, match=r'\(2, 4096\)'):
        frame_flatness(torch.zeros(2, 4096))
    with pytest.raises(ValueError, match='n_fft=1024'):
        frame_flatness(torch.zeros(100))
