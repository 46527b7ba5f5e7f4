"""The random-feature MMD (`losses/estimators/features.py`, `mmd.marginals: features`, issue #29)."""
import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.losses import MMDLoss, MMDLossConfig, closed_form_mmd2
from audiocraft_mmd.losses.kernels import MultiScaleGaussian, build_kernel
from audiocraft_mmd.losses.estimators.features import feature_mmd2

KERNEL = MultiScaleGaussian((1., 3.))


def dependent_rows(n: int, seed: int) -> torch.Tensor:
    rows = torch.randn(n, 3, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    rows[:, 1] = rows[:, 0] + 0.5 * rows[:, 1]
    return rows


@pytest.mark.parametrize('exclude', [False, True])
def test_mean_over_frequency_draws_is_the_closed_form(exclude):
    """Each frequency's terms have the closed form's as expectation (module docstring): the mean of R = 100
    independent draws of M = 256 frequencies is within 4 standard errors of it (SE from the R values)."""
    rows = dependent_rows(40, 0)
    values = torch.stack([feature_mmd2(rows, KERNEL, 256, torch.Generator().manual_seed(s), exclude)
                          for s in range(100)])
    se = values.std() / 10
    assert abs(values.mean() - closed_form_mmd2(rows, KERNEL, exclude_diagonal=exclude)) < 4 * se
    assert se < 0.05 * closed_form_mmd2(rows, KERNEL, exclude_diagonal=exclude).abs()  # a test with teeth


def test_zero_under_independence_and_positive_under_dependence():
    R = 100
    for dependent in (False, True):
        values = []
        for s in range(R):
            rows = dependent_rows(48, s) if dependent else torch.randn(48, 3, 2, dtype=torch.float64,
                                                                       generator=torch.Generator().manual_seed(s))
            values.append(feature_mmd2(rows, KERNEL, 64, torch.Generator().manual_seed(1000 + s), True))
        values = torch.stack(values)
        mean, se = values.mean().item(), values.std().item() / R ** 0.5
        assert (mean > 4 * se) if dependent else (abs(mean) < 4 * se)


def test_gradcheck():
    rows = dependent_rows(6, 1).requires_grad_()
    for exclude in (False, True):
        assert torch.autograd.gradcheck(
            lambda r: feature_mmd2(r, KERNEL, 8, torch.Generator().manual_seed(2), exclude), (rows,))


def test_loss_option_and_config():
    block = {'kernel': 'gaussian', 'sigmas': [1., 5.], 'sigma': 12., 'delay': True, 'normalize': 'none',
             'max_rows': None, 'block_size': 1024, 'exclude_shared': False}
    config = MMDLossConfig.parse({**block, 'marginals': 'features', 'features': 32})
    loss = MMDLoss.from_config(config)
    streams = torch.randn(2, 3, 2, 9, generator=torch.Generator().manual_seed(5))
    expected = feature_mmd2(loss.aligned_rows(streams), loss.kernel, 32, torch.Generator().manual_seed(0))
    assert loss(streams, torch.Generator().manual_seed(0)).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ConfigError, match='mmd.features'):
        MMDLossConfig.parse({**block, 'marginals': 'features', 'features': 0})
    with pytest.raises(ConfigError, match='mmd.kernel'):
        MMDLossConfig.parse({**block, 'marginals': 'features', 'kernel': 'quadratic'})
    with pytest.raises(ValueError, match='factorizes'):
        feature_mmd2(loss.aligned_rows(streams), build_kernel('squared_inverse'), 8)
