"""SI-SNR in dB: audiocraft's `sisnr` is the negative SI-SNR; ours has the sign users expect."""
import pytest
import torch

from audiocraft_mmd.metrics.si_snr import si_snr_db


def test_good_reconstruction_has_a_high_positive_si_snr():
    from audiocraft.losses import SISNR
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 1, 8000, generator=g)
    close = ref + 0.01 * torch.randn(2, 1, 8000, generator=g)  # 40 dB below the signal
    far = ref + 10. * torch.randn(2, 1, 8000, generator=g)     # 20 dB above it
    loss = SISNR(sample_rate=8000)
    assert loss(close, ref).item() < 0  # audiocraft: lower is better, negative for a good match
    assert si_snr_db(loss(close, ref).item()) == pytest.approx(40., abs=1.)
    assert si_snr_db(loss(far, ref).item()) == pytest.approx(-20., abs=1.)
