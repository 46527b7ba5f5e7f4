"""The closed-form (shuffle-free) MMD (`losses/estimators/closed_form.py`, `mmd.marginals: closed_form`, issue #29)."""
import itertools
import threading

import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.losses import MMDLoss, MMDLossConfig, closed_form_mmd2, mmd2_unbiased, take_codebooks
from audiocraft_mmd.losses.kernels import MultiScaleGaussian, build_kernel
from audiocraft_mmd.losses.scope import TileShare

KERNEL = MultiScaleGaussian((0.7, 2., 5.))
BLOCK = {'kernel': 'gaussian', 'sigmas': [1., 5.], 'sigma': 12., 'delay': True, 'normalize': 'none',
         'max_rows': None, 'block_size': 1024, 'exclude_shared': False}  # the default config's loss keys


def parse(**keys):
    return MMDLossConfig.parse({**BLOCK, **keys})


def dense_closed_form(rows: torch.Tensor, sigmas, exclude_diagonal: bool) -> torch.Tensor:
    """The module docstring's A + C - 2 B from materialized float64 Gram matrices."""
    rows = rows.double()
    n = rows.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    d = torch.cdist(rows.transpose(0, 1), rows.transpose(0, 1)).pow(2)  # [K, n, n]
    total = torch.zeros((), dtype=torch.float64)
    for sigma in sigmas:
        g = torch.exp(-d / (2 * sigma ** 2))
        joint = g.prod(0)[off].mean()
        within = torch.stack([gk[off].mean() for gk in g]).prod()
        rho = (g.sum(2) - 1) / (n - 1) if exclude_diagonal else g.mean(2)  # [K, n]
        total = total + joint + within - 2 * rho.prod(0).mean()
    return total


def spread_first(rows: torch.Tensor) -> torch.Tensor:
    """Codebook 0's rows 12 apart: every distance > 100, the radius 0.7 skips its exponentials there (an
    identity or 0 tile, `_live`), not in the other codebooks."""
    rows = rows.clone()
    rows[:, 0, 0] += 12. * torch.arange(rows.shape[0], dtype=rows.dtype)
    return rows


@pytest.mark.parametrize('n, K, spread', [(4, 2, False), (3, 3, False), (4, 2, True)])
def test_equals_the_shuffle_averaged_over_all_permutations(n, K, spread):
    rows = torch.randn(n, K, 2, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    rows = spread_first(rows) if spread else rows
    perms = list(itertools.permutations(range(n)))
    values = [mmd2_unbiased(rows.reshape(n, -1), take_codebooks(rows, torch.tensor(p).t()).reshape(n, -1), KERNEL)
              for p in itertools.product(perms, repeat=K)]  # (n!)^K shuffles, each codebook's own permutation
    average = torch.stack(values).mean()
    assert closed_form_mmd2(rows, KERNEL, block_size=2).item() == pytest.approx(average.item(), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize('exclude', [False, True])
def test_float32_tiles_agree_with_a_float64_reference(exclude):
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(37, 1, 4, generator=gen)
    rows = base + 0.3 * torch.randn(37, 3, 4, generator=gen)  # dependent codebooks
    reference = dense_closed_form(rows, KERNEL.sigmas, exclude)
    value = closed_form_mmd2(rows, KERNEL, block_size=5, exclude_diagonal=exclude)
    assert value.dtype == torch.float32
    assert reference > 1e-3  # well above the tolerance below
    # The three terms are O(1) (S = 3 radii) and accumulated in float64 from float32 tiles: ~1e-6 relative error.
    assert value.item() == pytest.approx(reference.item(), abs=2e-5)
    # and the tiled float32 gradient against the float64 one of the dense reference (autograd)
    rows32, rows64 = rows.clone().requires_grad_(), rows.double().requires_grad_()
    closed_form_mmd2(rows32, KERNEL, block_size=5, exclude_diagonal=exclude).backward()
    dense_closed_form(rows64, KERNEL.sigmas, exclude).backward()
    assert (rows32.grad.double() - rows64.grad).norm() < 1e-3 * rows64.grad.norm()


@pytest.mark.parametrize('exclude, spread', [(False, False), (True, False), (False, True)])
def test_gradcheck(exclude, spread):
    rows = torch.randn(7, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = (spread_first(rows) if spread else rows).requires_grad_()
    assert torch.autograd.gradcheck(lambda r: closed_form_mmd2(r, KERNEL, block_size=3, exclude_diagonal=exclude),
                                    (rows,))


def test_zero_in_expectation_on_independent_codebooks_and_positive_when_dependent():
    """Without the diagonal each term has expectation prod_k mu_k under independence (module docstring): the
    mean of R independent estimates is 0 within 4 standard errors (the SE from the R values; a false failure
    has probability ~6e-5); codebook 1 a noisy copy of codebook 0 gives a mean more than 4 SE above 0."""
    gen = torch.Generator().manual_seed(3)
    R, n = 200, 48
    independent, dependent = [], []
    for _ in range(R):
        rows = torch.randn(n, 3, 2, generator=gen, dtype=torch.float64)
        independent.append(closed_form_mmd2(rows, KERNEL, block_size=16, exclude_diagonal=True))
        rows[:, 1] = rows[:, 0] + 0.5 * rows[:, 1]
        dependent.append(closed_form_mmd2(rows, KERNEL, block_size=16, exclude_diagonal=True))
    for values, zero in ((torch.stack(independent), True), (torch.stack(dependent), False)):
        mean, se = values.mean().item(), values.std().item() / R ** 0.5
        assert (abs(mean) < 4 * se) if zero else (mean > 4 * se)


def _run_ranks(world, work):
    """Runs work(share) on W threads whose share.reduce sums over the threads (an all-reduce)."""
    barrier, slots, results = threading.Barrier(world), [None] * world, [None] * world

    def reduce(rank, t):
        slots[rank] = t
        barrier.wait()
        total = sum(slots)
        barrier.wait()
        return total

    def run(rank):
        results[rank] = work(TileShare(rank, world, lambda t: reduce(rank, t)))
    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize('world', [2, 3])
def test_tile_shares_give_the_whole_value_and_gradient(world):
    rows0 = torch.randn(23, 3, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    rows = rows0.clone().requires_grad_()
    whole = closed_form_mmd2(rows, KERNEL, block_size=5)
    whole.backward()

    def work(share):
        mine = rows0.clone().requires_grad_()
        value = closed_form_mmd2(mine, KERNEL, block_size=5, share=share)
        value.backward()
        return value.item(), mine.grad
    results = _run_ranks(world, work)
    for value, _ in results:
        assert value == pytest.approx(whole.item(), rel=1e-12)
    # each rank's gradient is W times its share (the row gather's backward sums them over ranks)
    assert torch.allclose(sum(g for _, g in results) / world, rows.grad, rtol=1e-10, atol=1e-14)


def test_loss_option_and_config_errors():
    streams = torch.randn(2, 3, 2, 9, generator=torch.Generator().manual_seed(5))
    loss = MMDLoss.from_config(parse(marginals='closed_form'))
    rows = loss.aligned_rows(streams)
    assert loss(streams).item() == pytest.approx(closed_form_mmd2(rows, loss.kernel, 1024).item(), rel=1e-6)
    with pytest.raises(ConfigError, match='mmd.kernel'):
        parse(marginals='closed_form', kernel='squared_inverse')
    with pytest.raises(ConfigError, match='mmd.shuffle'):
        parse(marginals='closed_form', shuffle='conditional')
    with pytest.raises(ConfigError, match='mmd.marginals'):
        parse(marginals='dhsic')
    for name in ('linear', 'quadratic', 'squared_inverse'):
        with pytest.raises(ValueError, match='factorizes'):
            closed_form_mmd2(rows, build_kernel(name))
    assert parse().marginals == 'shuffle'  # old configs: Algorithm 1's shuffle
