# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Kernels of the MMD loss against their formulas (paper, section 4.1 and Table 3)."""

import math

import pytest
import torch

from audiocraft_mmd.losses import kernels as K


def _naive(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Kernel matrix entry by entry, float64, straight from the paper's formulas."""
    out = torch.empty(len(x), len(y), dtype=torch.float64)
    for i in range(len(x)):
        for j in range(len(y)):
            d2 = float(((x[i] - y[j]) ** 2).sum())
            dot = float((x[i] * y[j]).sum())
            if name == 'gaussian':
                out[i, j] = sum(math.exp(-d2 / (2 * s ** 2)) for s in (0.1, 1, 5, 10, 20, 50))
            elif name == 'squared_inverse':
                out[i, j] = 1 / (1 + d2 / 12 ** 2)
            elif name == 'linear':
                out[i, j] = dot
            else:
                out[i, j] = dot ** 2
    return out


NAMES = ['gaussian', 'squared_inverse', 'linear', 'quadratic']


@pytest.mark.parametrize('name', NAMES)
def test_kernel_matches_formula(name):
    gen = torch.Generator().manual_seed(0)
    # Scale 3: distances of order 1 to 50 so that every Gaussian radius matters somewhere.
    x = 3 * torch.randn(5, 4, generator=gen, dtype=torch.float64)
    y = 3 * torch.randn(6, 4, generator=gen, dtype=torch.float64)
    x[0] = y[0]  # an exact duplicate: distance 0
    got = K.build_kernel(name)(x, y)
    torch.testing.assert_close(got, _naive(name, x, y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('name', NAMES)
def test_tile_value_and_derivative(name):
    kernel = K.build_kernel(name)
    s = torch.linspace(0., 40., 17, dtype=torch.float64).reshape(1, 17).requires_grad_()
    expected = kernel.profile(s)
    (expected_deriv,) = torch.autograd.grad(expected.sum(), s)
    total, deriv = kernel.evaluate_tile(s.detach().clone(), derivative=True)
    torch.testing.assert_close(total, expected.detach().sum(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(deriv, expected_deriv, rtol=1e-12, atol=1e-14)
    square = s.detach()[:, :16].reshape(4, 4)
    total, none = kernel.evaluate_tile(square.clone(), derivative=False, skip_diagonal=True)
    assert none is None
    value = kernel.profile(square)
    torch.testing.assert_close(total, value.sum() - value.diagonal().sum(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('low, high', [(10., 40.), (1.7, 2.1), (0., 1e4), (1e6, 2e6)])
def test_gaussian_tile_skips_and_floors_exactly(low, high):
    # float32 tiles: [10, 40] makes the sigma = 0.1 terms exactly 0 (skipped), [1.7, 2.1] puts them
    # in the subnormal range (exponent floored), [0, 1e4] mixes everything.
    kernel = K.MultiScaleGaussian()
    s = torch.linspace(low, high, 600).reshape(20, 30)
    expected = kernel.profile(s.double())
    expected_deriv = sum(-r * torch.exp(-r * s.double()) for r in kernel._rates)
    total, deriv = kernel.evaluate_tile(s.clone(), derivative=True)
    assert abs(float(total) - float(expected.sum())) <= 1e-6 * float(expected.sum()) + 1e-30
    torch.testing.assert_close(deriv.double(), expected_deriv, rtol=1e-5, atol=1e-30)


def test_statistic_clamps_duplicates():
    x = torch.full((3, 64), 1e3)
    s = K.MultiScaleGaussian().statistic(x, x)
    assert (s >= 0).all()
    assert K.Linear().statistic(x, x)[0, 0] == pytest.approx(64e6)


def test_defaults_and_names():
    assert K.MultiScaleGaussian().sigmas == (0.1, 1., 5., 10., 20., 50.)
    assert K.SquaredInverse().sigma == 12.
    assert isinstance(K.build_kernel('gaussian', sigmas=[2.]), K.MultiScaleGaussian)
    assert isinstance(K.build_kernel('squared_inverse', sigma=3), K.SquaredInverse)
    assert isinstance(K.build_kernel('linear'), K.Linear)
    assert isinstance(K.build_kernel('quadratic'), K.Quadratic)
    assert not list(K.build_kernel('gaussian').parameters())


def test_errors():
    with pytest.raises(ValueError, match="Unknown kernel 'rbf'.*gaussian, linear, quadratic, squared_inverse"):
        K.build_kernel('rbf')
    with pytest.raises(ValueError, match='sigma.*-1'):
        K.build_kernel('gaussian', sigmas=(1., -1.))
    with pytest.raises(ValueError, match='sigma.*0'):
        K.SquaredInverse(sigma=0.)
    with pytest.raises(ValueError, match='sigma.*nan'):
        K.MultiScaleGaussian(sigmas=(float('nan'),))
    with pytest.raises(ValueError, match='sigmas.*empty'):
        K.MultiScaleGaussian(sigmas=())
