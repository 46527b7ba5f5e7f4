"""FAD-infinity removes the 1/N bias of FAD on Gaussians whose true Frechet distance is known."""
import math

import torch

from audiocraft_mmd.music_quality.fad_infinity import fad_infinity


def _gaussian(n, dim, shift, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64) + shift


def test_same_distribution_extrapolates_to_zero():
    # True distance 0; plain FAD of 400 samples in 20 d is biased upwards (~ tr terms / N), FAD-inf is not:
    # its bootstrap SE bounds it.
    ref, test = _gaussian(20000, 20, 0., 0), _gaussian(400, 20, 0., 1)
    out = fad_infinity(ref, test, num_bootstrap=20, seed=0)
    assert out.fad_full > 0.02  # the bias the correction removes (expected ~ D * D / (4 N) here)
    assert abs(out.fad_inf) < max(4 * out.se, 0.01) and abs(out.fad_inf) < out.fad_full / 2


def test_known_mean_shift():
    # Mean shift of 0.5 in each of 20 d, same covariance: FD = 20 * 0.25 = 5.
    ref, test = _gaussian(20000, 20, 0., 0), _gaussian(400, 20, 0.5, 2)
    out = fad_infinity(ref, test, num_bootstrap=20, seed=0)
    assert out.fad_full > out.fad_inf
    assert math.isclose(out.fad_inf, 5.0, abs_tol=4 * out.se + 0.25)


def test_bad_shapes_named():
    import pytest
    with pytest.raises(ValueError, match='reference'):
        fad_infinity(torch.zeros(10, 3), torch.zeros(10, 4))
