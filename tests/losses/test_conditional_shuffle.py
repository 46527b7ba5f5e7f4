"""`mmd.shuffle: conditional` (issue #19): strata of the past, the within-strata permutations, and the loss on
synthetic codes of known structure (`conftest.past_structured_codes`)."""
import pytest
import torch

from audiocraft_mmd.losses import (NO_PAST, SHUFFLES, MMDBank, MMDLoss, apply_delay, mmd2_unbiased, past_strata,
                                   shuffle_codebooks, shuffle_rows, shuffleable, stratified_index, stratified_mmd2,
                                   take_codebooks)

from conftest import past_structured_codes

K, M, N_ITEMS, REPLICATES = 3, 4, 1200, 6
# Student t quantile, 5 degrees of freedom (REPLICATES - 1), one-sided 1e-4.
T_QUANTILE = 9.68


def _one_hot_streams(codes: torch.Tensor) -> torch.Tensor:
    """[B, K, T] codes -> [B, K, M, T] streams 3 * one_hot: distinct codes are 3 sqrt(2) apart, so a Gaussian
    of sigma 1 gives exp(-9) ~ 1e-4 between them and 1 on equal codes: ~ the indicator of equal K-tuples."""
    return 3. * torch.nn.functional.one_hot(codes, M).permute(0, 1, 3, 2).double()


def _loss(shuffle: str, delay: bool, exclude_shared: bool = False) -> MMDLoss:
    return MMDLoss('gaussian', {'sigmas': (1.,)}, delay=delay, shuffle=shuffle, exclude_shared=exclude_shared)


def _replicates(estimate, given_past: str, delay: bool):
    """Mean and sample std of REPLICATES estimates `estimate(codes, streams, generator)` on independent data sets."""
    values = []
    for seed in range(REPLICATES):
        codes = past_structured_codes(N_ITEMS, K, M, given_past, delay, seed=seed)
        values.append(float(estimate(codes, _one_hot_streams(codes), torch.Generator().manual_seed(100 + seed))))
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), t.std().item()


def _with(loss: MMDLoss):
    return lambda codes, streams, generator: loss(streams, generator, codes=codes)


def _pooled(codes, streams, generator):
    """The pooled in-sample alternative: eq. (7) over all rows at once, each codebook shuffled within strata."""
    loss = _loss('conditional', delay=True)
    strata = past_strata(codes, delay=True)
    rows = loss.aligned_rows(streams)[shuffleable(strata)]
    shuffled = take_codebooks(rows, stratified_index(strata[shuffleable(strata)], K, generator))
    return mmd2_unbiased(rows.flatten(1), shuffled.flatten(1), loss.kernel)


def _bias_bound(rows: int) -> float:
    """How far from 0 the expectation of the global estimate may be when the codebooks are independent.

    The joint rows are iid, and every within pair (x_i, x_j), (y_i, y_j), i != j, and every cross pair (x_i, y_j)
    that shares no cell has the same expectation (all cells are independent). The cross sum differs only by its
    at most K n pairs sharing a cell (their expectation differs by at most L, the kernel's range: 1 for one
    Gaussian), and by a normalization n^2 (or n^2 - P >= n^2 - K n with `exclude_shared`) instead of
    n (n - 1): |E[MMD^2]| <= 2 (K + 1) L / (n - K).

    The conditional (stratified) estimate needs no allowance: within a stratum, given the strata, its rows are
    iid and, when the codebooks are independent given the stratum, every within pair and every cross pair that
    shares no cell (the others are left out) consists of independent cells of the same laws: each stratum's
    term, hence their weighted average, is exactly 0 in expectation.
    """
    return 2 * (K + 1) / (rows - K)


def _noise(std: float) -> float:
    """The mean of R replicates is within T_QUANTILE * s / sqrt(R) of its expectation (Student t, R - 1
    degrees of freedom, one-sided 1e-4 on each side; s the sample std of the replicates)."""
    return T_QUANTILE * std / REPLICATES ** 0.5


def test_past_strata_are_the_previous_first_code():
    codes = torch.arange(2 * 3 * 5).reshape(2, 3, 5)  # B=2, K=3, T=5, every code distinct
    parallel = past_strata(codes, delay=False).reshape(2, 5)
    assert (parallel[:, 0] == NO_PAST).all()
    assert torch.equal(parallel[:, 1:], codes[:, 0, :-1])
    # delay: aligned row j holds codebook 0 of raw frame t = j + K - 1 (as apply_delay says); its stratum is t - 1
    frame_of_codebook_0 = apply_delay(torch.arange(5.).expand(2, 3, 1, 5))[:, 0, 0].long()
    delayed = past_strata(codes, delay=True).reshape(2, -1)
    assert torch.equal(delayed, codes[:, 0, frame_of_codebook_0[0] - 1])
    assert (delayed != NO_PAST).all(), "with the delay alignment every row has a previous frame"


def test_stratified_index_permutes_within_strata():
    strata = torch.randint(5, (200,), generator=torch.Generator().manual_seed(0))
    index = stratified_index(strata, 4, torch.Generator().manual_seed(1))
    assert index.shape == (200, 4)
    for k in range(4):
        assert torch.equal(index[:, k].sort().values, torch.arange(200)), "column is a permutation"
        assert torch.equal(strata[index[:, k]], strata), "rows move only within their stratum"
    assert (index != torch.arange(200)[:, None]).any(0).all(), "and they do move"


def test_stratified_index_is_uniform_within_a_stratum():
    """A stratum of 3 rows: each row lands in each position with probability 1/3. Over 3000 draws a count has
    std sqrt(3000 * 1/3 * 2/3) = 25.8; 6 std (126) bounds all 9 counts (Bernstein, < 1e-6 each)."""
    strata = torch.tensor([7, 2, 7, 2, 7])
    index = stratified_index(strata, 3000, torch.Generator().manual_seed(0))
    members = torch.tensor([0, 2, 4])
    for target in members:
        counts = torch.stack([(index[target] == source).sum() for source in members])
        assert ((counts - 1000).abs() <= 126).all(), counts


def test_small_strata_are_never_shuffled():
    """Rows without a past or in a stratum of fewer than K + 1 rows are left out of both sets: no row "shuffled"
    with itself, and every shuffled row keeps a cross pair that shares no cell."""
    strata = torch.tensor([3, NO_PAST, 5, 3, 9, NO_PAST, 5, 5, 1])
    assert shuffleable(strata).tolist() == [True, False, True, True, False, False, True, True, False]
    rows = torch.arange(9.)[:, None, None].expand(9, 2, 1)  # row i holds i in both codebooks; K = 2
    joint, shuffled, index, mask = shuffle_rows(rows, strata, torch.Generator().manual_seed(0))
    assert torch.equal(mask, shuffleable(strata, min_rows=3)), "stratum 3 has 2 < K + 1 rows"
    assert torch.equal(joint[:, 0, 0], torch.tensor([2., 6., 7.]))
    assert all(torch.equal(index[:, k].sort().values, torch.arange(3)) for k in range(2))
    assert set(shuffled.flatten().tolist()) <= {2., 6., 7.}
    # all strata too small: nothing to compare, the loss is 0 and carries a zero gradient
    codes = torch.tensor([[[0, 1, 1, 2], [0, 0, 0, 0]]])  # previous first codes 0, 1, 1: strata of 1 and 2 rows
    streams = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    value = _loss('conditional', delay=False)(streams, codes=codes)
    value.backward()
    assert value.item() == 0. and streams.grad.abs().sum() == 0


def test_stratified_estimate_is_the_weighted_mean_of_per_stratum_estimates():
    """sum_s n_s / n MMD^2_s, each eq. (7) on the stratum's rows with its shared pairs excluded."""
    gen = torch.Generator().manual_seed(0)
    strata = torch.tensor([4] * 6 + [1] * 9)[torch.randperm(15, generator=gen)]
    joint = torch.randn(15, 2, 3, generator=gen, dtype=torch.float64)
    index = stratified_index(strata, 2, gen)
    shuffled = take_codebooks(joint, index)
    kernel = _loss('conditional', True).kernel
    expected = 0.
    for s in (1, 4):
        members = (strata == s).nonzero().squeeze(1)
        x, y = joint[members], shuffled[members]
        n_s = len(members)
        cross, pairs = 0., 0
        for i in range(n_s):
            for j in range(n_s):  # y_j shares a cell with x_i iff one of its codebooks came from row members[i]
                if (index[members[j]] == members[i]).any():
                    continue
                cross, pairs = cross + kernel.profile(((x[i] - y[j]) ** 2).sum()).item(), pairs + 1
        within = sum(kernel.profile(((a[i] - a[j]) ** 2).sum()).item()
                     for a in (x, y) for i in range(n_s) for j in range(n_s) if i != j) / (n_s * (n_s - 1))
        expected += n_s / 15 * (within - 2 * cross / pairs)
    got = stratified_mmd2(joint, shuffled, index, strata, kernel, block_size=4)
    assert abs(got.item() - expected) <= 1e-10


@pytest.mark.parametrize('delay', [True, False])
def test_conditional_mmd_vanishes_given_the_past(delay):
    """Codebooks independent given the previous first code, dependent marginally: conditional ~ 0 (no bias
    allowance, see `_bias_bound`), global clearly > 0."""
    for exclude_shared in (False, True):
        mean, std = _replicates(_with(_loss('conditional', delay, exclude_shared)), 'independent', delay)
        assert abs(mean) <= _noise(std), (exclude_shared, mean, std)
    rows = N_ITEMS * (1 if delay else 2)  # parallel global: frame 0 too
    mean, std = _replicates(_with(_loss('global', delay)), 'independent', delay)
    assert mean - _noise(std) >= 3 * _bias_bound(rows), (mean, std)


def test_pooled_shuffle_is_biased_and_the_stratified_estimate_is_not():
    """Why per stratum: eq. (7) over all rows shuffled within strata is clearly negative when the codebooks are
    independent given the past (shuffled row j shares its stratum with joint row j: about -2 Delta / n)."""
    mean, std = _replicates(_pooled, 'independent', True)
    assert mean + _noise(std) < 0, (mean, std)
    ours, ours_std = _replicates(_with(_loss('conditional', True)), 'independent', True)
    assert abs(ours) <= _noise(ours_std) < abs(mean), (ours, ours_std, mean)


@pytest.mark.parametrize('delay', [True, False])
def test_dependence_given_the_past_is_penalized(delay):
    """Codebooks dependent given the previous first code: both shuffles clearly > 0."""
    for shuffle in SHUFFLES:
        mean, std = _replicates(_with(_loss(shuffle, delay)), 'dependent', delay)
        assert mean - _noise(std) >= 3 * _bias_bound(N_ITEMS), (shuffle, mean, std)


def test_global_shuffle_is_algorithm_1_unchanged():
    """The default draws exactly Algorithm 1's permutations (same generator use, same value); codes are ignored."""
    codes = past_structured_codes(40, K, M, 'dependent', True, seed=0)
    streams = _one_hot_streams(codes) + 0.1 * torch.randn(40, K, M, K, dtype=torch.float64)
    loss = _loss('global', delay=True)
    ours_rng, reference_rng = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    value = loss(streams, ours_rng, codes=codes)
    rows = apply_delay(streams).permute(0, 3, 1, 2).reshape(-1, K, M)
    shuffled = shuffle_codebooks(rows, reference_rng)
    expected = mmd2_unbiased(rows.reshape(rows.shape[0], -1), shuffled.reshape(rows.shape[0], -1), loss.kernel)
    assert torch.equal(value, expected)
    assert torch.equal(loss(streams, torch.Generator().manual_seed(3)), value)
    assert torch.equal(ours_rng.get_state(), reference_rng.get_state())


def test_bank_conditional_equals_the_full_estimate():
    """Bank steps with strata: value and gradient are those of eq. (7) on [current; bank] shuffled within strata."""
    loss = _loss('conditional', delay=True)
    bank = MMDBank(loss, num_batches=3)
    batches = [past_structured_codes(30, K, M, 'dependent', True, seed=s) for s in range(3)]
    noisy = [_one_hot_streams(c) + 0.3 * torch.randn(30, K, M, K, dtype=torch.float64) for c in batches]
    for codes, streams in zip(batches[:2], noisy[:2]):
        bank(loss.aligned_rows(streams), torch.Generator().manual_seed(0), strata=loss.aligned_strata(codes))
    current = loss.aligned_rows(noisy[2]).requires_grad_()
    result = bank(current, torch.Generator().manual_seed(5), with_value=True, strata=loss.aligned_strata(batches[2]))
    result.loss.backward()

    reference = current.detach().clone().requires_grad_()
    everything = torch.cat([reference, *[loss.aligned_rows(s) for s in noisy[:2]]])  # bank: oldest first
    strata = torch.cat([loss.aligned_strata(c) for c in (batches[2], *batches[:2])])
    joint, shuffled, index, keep = shuffle_rows(everything, strata, torch.Generator().manual_seed(5))
    n = joint.shape[0]
    full = stratified_mmd2(joint, shuffled, index, strata[keep], loss.kernel, loss.block_size)
    full.backward()
    assert result.num_rows == n == int(keep.sum())
    assert abs(result.value.item() - full.item()) <= 1e-10
    assert torch.allclose(current.grad, reference.grad, rtol=1e-9, atol=1e-12)
    assert current.grad.abs().sum() > 0


def test_conditional_needs_codes_and_valid_names():
    with pytest.raises(ValueError, match='shuffle'):
        MMDLoss(shuffle='stratified')
    streams = torch.randn(2, K, 3, 6)
    with pytest.raises(ValueError, match='codes'):
        _loss('conditional', delay=True)(streams)
    with pytest.raises(ValueError, match='strata'):
        MMDBank(_loss('conditional', delay=True), 2)(torch.randn(4, K, 3))


def test_reproduce_protocol_mmds_stay_global():
    """`make reproduce` measures every codec with the same (global) estimators, conditional runs included."""
    import omegaconf
    from audiocraft_mmd.studies.codecs.evaluation import eval_mmd_losses
    from audiocraft_mmd.train import main
    mmd_cfg = main.get_xp(['solver=compression/encodec_mmd_cpu', 'mmd.shuffle=conditional']).cfg.mmd
    assert mmd_cfg.shuffle == 'conditional'
    assert {loss.shuffle for loss in eval_mmd_losses(mmd_cfg, max_rows=64).values()} == {'global'}
    legacy = omegaconf.OmegaConf.create({k: v for k, v in omegaconf.OmegaConf.to_container(mmd_cfg).items()
                                         if k != 'shuffle'})
    assert {loss.shuffle for loss in eval_mmd_losses(legacy, max_rows=64).values()} == {'global'}
