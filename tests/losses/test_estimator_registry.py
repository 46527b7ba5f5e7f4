"""A new MMD estimator is one class and one registry entry (`losses.estimators.ESTIMATORS`), nothing else.

The toy here, a dense V-statistic reference, is registered in this file only. The loss and the solver's config
then take it by name (`mmd.marginals: dense_v`). The capabilities it declares (no bank; crossing ranks by reducing
its sums) are enforced by the rules derived from the attributes, with no code written for it."""
import typing as tp

import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.losses import ESTIMATORS, MMDBank, MMDConfig, MMDLoss, build_kernel, shuffle_codebooks
from audiocraft_mmd.losses.estimators import MMDEstimator
from audiocraft_mmd.losses.estimators.blocked import within_sum

K, D, B, T = 3, 2, 2, 12
SIGMAS = (1., 5.)


class DenseV(MMDEstimator):
    """Biased MMD^2 (V-statistic: diagonals in) between the joint rows and one global shuffle, dense [n, n] kernel
    matrices. Across ranks it averages the ranks' estimates: its two sums (estimate, 1) are all-reduced."""
    marginals = 'dense_v'
    crosses_ranks = 'reduce'

    def __call__(self, rows, strata, generator, share=None, reduce=None):
        shuffled = shuffle_codebooks(rows, generator).flatten(1)
        x = rows.flatten(1)
        local = self.kernel(x, x).mean() + self.kernel(shuffled, shuffled).mean() - 2 * self.kernel(x, shuffled).mean()
        sums = torch.stack([local, torch.ones_like(local)])
        sums = sums if reduce is None else reduce(sums)
        return sums[0] / sums[1]


@pytest.fixture
def dense_v(monkeypatch):
    monkeypatch.setitem(ESTIMATORS, 'dense_v', DenseV)


def _streams(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, K, D, T, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _block(**changes: tp.Any) -> dict:
    return {'kernel': 'gaussian', 'sigmas': list(SIGMAS), 'delay': False, 'normalize': 'none', 'max_rows': None,
            'block_size': 1024, 'exclude_shared': False, 'num_batches': 2, 'valid_batches': 1,
            'checkpoint_encoder': False, 'streams': 'quantized', 'marginals': 'dense_v', **changes}


def test_unregistered_name_is_refused():
    with pytest.raises(ConfigError, match='mmd.marginals'):
        MMDConfig.parse(_block())


def test_the_loss_takes_it_by_name(dense_v):
    """V = U (n - 1) / n + S / n per within term (k(x, x) = S radii on the diagonal), the cross term the same: the
    toy's value and the shuffle estimator's, on the same draws, differ by exactly that."""
    streams = _streams()
    toy = MMDLoss(kernel_kwargs={'sigmas': SIGMAS}, delay=False, marginals='dense_v')
    shuffle = MMDLoss(kernel_kwargs={'sigmas': SIGMAS}, delay=False)
    assert isinstance(toy.estimator, DenseV)
    v, u = (loss(streams, torch.Generator().manual_seed(3)) for loss in (toy, shuffle))
    rows = shuffle.aligned_rows(streams)
    joint = rows.flatten(1)
    shuffled = shuffle_codebooks(rows, torch.Generator().manual_seed(3)).flatten(1)
    n, kernel = joint.shape[0], build_kernel('gaussian', sigmas=SIGMAS)
    within = sum(within_sum(kernel, a, 1. / (n * (n - 1)), 1024, None) for a in (joint, shuffled))
    torch.testing.assert_close(v - u, (2 * len(SIGMAS) - within) / n, rtol=1e-10, atol=1e-12)


def test_declared_capabilities_are_enforced(dense_v):
    """No bank (it does not declare `supports_bank`); global scope only without row statistics (it crosses ranks
    by reducing its sums), and its rows are then never gathered."""
    assert MMDConfig.parse(_block(scope='global')).loss.marginals == 'dense_v'
    with pytest.raises(ConfigError, match=r'mmd\.marginals'):
        MMDConfig.parse(_block(estimator='bank'))
    with pytest.raises(ValueError, match='marginals'):
        MMDBank(MMDLoss(marginals='dense_v'), num_batches=2)
    with pytest.raises(ConfigError, match=r'mmd\.normalize'):
        MMDConfig.parse(_block(scope='global', normalize='codebook'))
    gathered = []

    def gather(rows):
        gathered.append(rows)
        return rows
    loss = MMDLoss(kernel_kwargs={'sigmas': SIGMAS}, delay=False, marginals='dense_v')
    assert torch.isfinite(loss(_streams(), torch.Generator().manual_seed(0), gather=gather)) and not gathered
    with pytest.raises(ValueError, match='normalize'):
        MMDLoss(delay=False, marginals='dense_v', normalize='codebook')(_streams(), gather=gather)


def test_the_solver_takes_it_by_name(dense_v, make_solver):
    solver = make_solver('mmd.marginals=dense_v', 'mmd.num_batches=2')
    assert isinstance(solver.mmd_loss.estimator, DenseV) and solver.mmd_bank is None
    batches = [batch for batch, _ in zip(solver.dataloaders['train'], range(2))]
    assert torch.isfinite(solver.macro_batch_mmd(batches, with_grad=False))
    with pytest.raises(ConfigError, match=r'mmd\.marginals'):
        make_solver('mmd.marginals=dense_v', 'mmd.estimator=bank')
