"""Memory-bank MMD: value and gradient equal eq. (7) over current + bank rows with the same shuffle."""
import pytest
import torch

from audiocraft_mmd.losses import MMDBank, MMDLoss, mmd2_unbiased, shuffle_codebooks
from audiocraft_mmd.losses.estimators import shuffle as bank_module
from audiocraft_mmd.losses.estimators.features import feature_mmd2

K, D = 3, 4


def _rows(m: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(m, K, D, generator=gen, dtype=torch.float64)
    z[:, 1] += z[:, 0]  # dependent codebooks: the gradient is far from 0
    return z


def _filled_bank(kernel: str, sizes, num_batches: int = 4, block_size: int = 5) -> MMDBank:
    bank = MMDBank(MMDLoss(kernel, block_size=block_size), num_batches)
    for i, m in enumerate(sizes):
        bank(_rows(m, 100 + i), torch.Generator().manual_seed(i))
    return bank


@pytest.mark.parametrize('kernel', ['gaussian', 'squared_inverse', 'linear', 'quadratic'])
def test_value_and_gradient_equal_the_full_estimate(kernel):
    """Block size 5 splits every group of rows into several tiles, diagonal tiles included."""
    bank = _filled_bank(kernel, [7, 6, 9])
    old = list(bank._bank)
    current = _rows(8, 0).requires_grad_()
    result = bank(current, torch.Generator().manual_seed(42), with_value=True)
    result.loss.backward()

    # Reference: eq. (7) on [current; bank oldest first] with the permutations drawn the same way.
    reference_rows = _rows(8, 0).requires_grad_()
    everything = torch.cat([reference_rows, *old])
    shuffled = shuffle_codebooks(everything, torch.Generator().manual_seed(42))
    n = everything.shape[0]
    full = mmd2_unbiased(everything.reshape(n, -1), shuffled.reshape(n, -1), kernel, block_size=64)
    full.backward()
    assert result.num_rows == n == 8 + 7 + 6 + 9
    # float64 sums of ~n^2 terms of size <= ~6: round-off far below 1e-10
    assert abs(result.value.item() - full.item()) <= 1e-10 * max(1., abs(full.item()))
    assert torch.allclose(current.grad, reference_rows.grad, rtol=1e-9, atol=1e-12)
    assert current.grad.abs().sum() > 0


def test_bank_holds_num_batches_minus_one_detached_batches():
    bank = _filled_bank('gaussian', [5, 5, 5, 5, 5], num_batches=3)
    assert len(bank) == 2
    assert all(not rows.requires_grad for rows in bank._bank)
    # the two newest batches (seeds 103, 104), oldest first
    assert torch.equal(bank._bank[0], _rows(5, 103)) and torch.equal(bank._bank[1], _rows(5, 104))
    bank.clear()
    assert len(bank) == 0
    single = MMDBank(MMDLoss(), num_batches=1)
    single(_rows(5, 0))
    assert len(single) == 0, "num_batches=1 is the current batch alone"


def test_constant_tiles_are_skipped_unless_the_value_is_asked(monkeypatch):
    bank = _filled_bank('gaussian', [6, 6])

    def forbidden(*args, **kwargs):
        raise AssertionError("bank x bank tiles computed for a training step")
    monkeypatch.setattr(bank_module, '_constant_terms', forbidden)
    result = bank(_rows(6, 0).requires_grad_(), torch.Generator().manual_seed(0))
    assert result.value is None and result.loss.requires_grad


def test_shuffles_are_drawn_over_all_rows():
    bank = _filled_bank('gaussian', [6, 6, 6])
    current = _rows(6, 0).requires_grad_()
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    bank(current, gen).loss.backward()
    # the K permutations were drawn over all n = 24 rows: the generator advanced by K randperm(24)
    replay = torch.Generator()
    replay.set_state(state)
    for _ in range(K):
        torch.randperm(24, generator=replay)
    assert torch.equal(gen.get_state(), replay.get_state())


@pytest.mark.parametrize('option', [{'normalize': 'codebook'}, {'max_rows': 16}, {'exclude_shared': True},
                                    {'marginals': 'closed_form'},
                                    {'marginals': 'features', 'normalize': 'dimension'}])
def test_unsupported_options_are_refused(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        MMDBank(MMDLoss(**option), num_batches=4)


@pytest.mark.parametrize('exclude', [False, True])
def test_features_bank_is_the_feature_estimate_over_current_and_bank_rows(exclude):
    """The random-feature bank takes the whole estimate over [current; bank] with the step's fresh frequencies:
    value and current-row gradient equal `feature_mmd2` on those rows (bank rows constants), same generator."""
    loss = MMDLoss(marginals='features', features=32, exclude_shared=exclude, kernel_kwargs={'sigmas': (1., 5.)})
    bank = MMDBank(loss, num_batches=3)
    for i, m in enumerate([7, 6]):
        bank(_rows(m, 100 + i), torch.Generator().manual_seed(i))
    old = list(bank._bank)
    current = _rows(8, 0).requires_grad_()
    result = bank(current, torch.Generator().manual_seed(42), with_value=True)
    result.loss.backward()
    reference_rows = _rows(8, 0).requires_grad_()
    full = feature_mmd2(torch.cat([reference_rows, *old]), loss.kernel, 32, torch.Generator().manual_seed(42),
                        exclude)
    full.backward()
    assert result.num_rows == 8 + 7 + 6 and len(bank) == 2
    assert result.value.item() == full.item() and result.loss.item() == full.item()
    assert torch.equal(current.grad, reference_rows.grad) and current.grad.abs().sum() > 0
    assert all(not rows.requires_grad for rows in bank._bank)
    with pytest.raises(ValueError, match='reduce'):
        _filled_bank('gaussian', [4])(_rows(4, 1), reduce=lambda t: t)


def test_shape_change_needs_a_clear():
    bank = _filled_bank('gaussian', [6])
    with pytest.raises(ValueError, match='clear'):
        bank(torch.randn(6, K + 1, D))
