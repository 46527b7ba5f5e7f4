"""losses.kernel_scale: per-kernel weight factors at matched gradient scale."""
import math

import omegaconf
import pytest
import torch

from audiocraft_mmd.losses import MMDLoss
from audiocraft_mmd.losses.mmd_config import MMDLossConfig
from audiocraft_mmd.losses.kernel_scale import gradient_norm, kernel_factors, kernel_losses

MMD_CFG = omegaconf.OmegaConf.create({'kernel': 'gaussian', 'sigmas': [0.1, 1., 5., 10., 20., 50.], 'sigma': 12.,
                                      'delay': True, 'streams': 'quantized', 'normalize': 'none', 'max_rows': None,
                                      'block_size': 1024, 'exclude_shared': False})


def _streams(seed: int) -> torch.Tensor:
    """Dependent streams [B, K, D, T]: every codebook shares a component."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(3, 1, 8, 12, generator=g)
    return shared + 0.5 * torch.randn(3, 3, 8, 12, generator=g)


@pytest.mark.parametrize('c', [0.5, 4.])
def test_a_kernel_with_c_times_the_gradient_gets_factor_one_over_c(c):
    gaussian = MMDLoss.from_config(MMDLossConfig.parse(MMD_CFG))

    def scaled(x, generator=None):  # same draws (same seed), gradient exactly c times the Gaussian one
        return c * gaussian(x, generator=generator)
    factors = kernel_factors({'gaussian': gaussian, 'scaled': scaled}, [_streams(0), _streams(1)])
    assert factors['gaussian'] == 1.
    assert factors['scaled'] == pytest.approx(1 / c, rel=1e-5)


def test_factors_are_the_geometric_mean_over_stream_sets():
    gaussian = MMDLoss.from_config(MMDLossConfig.parse(MMD_CFG))
    sets = [_streams(0), _streams(1)]

    def by_set(x, generator=None):  # gradient scaled by 2 on set 0 and 8 on set 1: geometric mean 4
        return (2. if torch.equal(x.detach(), sets[0]) else 8.) * gaussian(x, generator=generator)
    factors = kernel_factors({'gaussian': gaussian, 'by_set': by_set}, sets)
    assert factors['by_set'] == pytest.approx(1 / 4, rel=1e-5)


def test_real_kernels_give_finite_positive_deterministic_factors():
    losses = kernel_losses(MMD_CFG, ('gaussian', 'squared_inverse', 'quadratic', 'linear'))
    sets = [_streams(0)]
    first, again = kernel_factors(losses, sets), kernel_factors(losses, sets)
    assert first == again
    assert all(math.isfinite(f) and f > 0 for f in first.values())
    # the quadratic kernel's gradient grows with the 4th power of the scale: far larger than the Gaussian one
    assert first['quadratic'] < first['gaussian'] == 1.


def test_gradient_norm_is_the_norm_of_the_autograd_gradient():
    x = _streams(0)
    value, norm = gradient_norm(lambda s, generator=None: (s ** 2).sum(), x)
    assert value == pytest.approx(float((x ** 2).sum()), rel=1e-6)
    assert norm == pytest.approx(float((2 * x).norm()), rel=1e-6)


def test_a_flat_loss_has_no_factor():
    gaussian = MMDLoss.from_config(MMDLossConfig.parse(MMD_CFG))
    with pytest.raises(ValueError, match='gradient norm 0'):
        kernel_factors({'gaussian': gaussian, 'flat': lambda x, generator=None: 0 * x.sum()}, [_streams(0)])
