# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""MMD independence loss: blocked estimator against a dense float64 one, gradients, statistics, errors."""

import typing as tp

import pytest
import torch

from audiocraft_mmd.losses import MMDLoss, apply_delay, build_kernel, mmd2_unbiased, shared_pairs, shuffle_codebooks
from audiocraft_mmd.losses.estimators import shuffle as mmd_module

KERNELS = ['gaussian', 'squared_inverse', 'linear', 'quadratic']
NORMALIZATIONS = ['none', 'codebook', 'dimension']


# ---------------------------------------------------------------- dense float64 reference
def dense_kernel(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Full kernel matrix from the paper's formulas (no matmul trick), float64."""
    x, y = x.double(), y.double()
    d2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    dot = (x[:, None] * y[None]).sum(-1)
    if name == 'gaussian':
        return sum(torch.exp(-d2 / (2 * s ** 2)) for s in (0.1, 1, 5, 10, 20, 50))
    if name == 'squared_inverse':
        return 1 / (1 + d2 / 144)
    return dot if name == 'linear' else dot ** 2


def dense_mmd2(name: str, x: torch.Tensor, y: torch.Tensor,
               exclude: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. (7) with full n x n matrices; ``exclude`` pairs leave the cross average."""
    n = len(x)
    off = ~torch.eye(n, dtype=torch.bool)
    cross = torch.ones(n, n, dtype=torch.bool)
    if exclude is not None:
        cross[exclude[:, 0], exclude[:, 1]] = False
    kxx, kyy, kxy = dense_kernel(name, x, x), dense_kernel(name, y, y), dense_kernel(name, x, y)
    return (kxx[off].sum() + kyy[off].sum()) / (n * (n - 1)) - 2 * kxy[cross].sum() / cross.sum()


def reference_loss(streams: torch.Tensor, name: str, delay: bool, normalize: str, seed: int,
                   max_rows: tp.Optional[int] = None, exclude_shared: bool = False) -> torch.Tensor:
    """Algorithm 1 written out with loops, following MMDLoss's documented order of random draws."""
    z = streams.double()
    B, K, D, T = z.shape
    length = T - K + 1 if delay else T
    rows = torch.stack([torch.stack([z[b, k, :, t + (K - 1 - k if delay else 0)] for k in range(K)])
                        for b in range(B) for t in range(length)])  # [n, K, D], batch-major
    rows = rows - rows.mean(0) if normalize != 'none' else rows
    if normalize == 'codebook':
        for k in range(K):
            rows[:, k] = rows[:, k] / torch.sqrt((rows[:, k] ** 2).sum(-1).mean() + 1e-8)
    elif normalize == 'dimension':
        rows = rows / torch.sqrt((rows ** 2).mean(0) + 1e-8)
    gen = torch.Generator().manual_seed(seed)
    n = len(rows)
    if max_rows is not None and n > max_rows:
        rows, n = rows[torch.randperm(n, generator=gen)[:max_rows]], max_rows
    perms = [torch.randperm(n, generator=gen) for _ in range(K)]
    shuffled = torch.stack([rows[perms[k], k] for k in range(K)], dim=1)
    exclude = None
    if exclude_shared:
        exclude = torch.tensor(sorted({(int(perms[k][j]), j) for j in range(n) for k in range(K)}))
    return dense_mmd2(name, rows.reshape(n, -1), shuffled.reshape(n, -1), exclude)


def dependent_streams(seed: int, B: int = 2, K: int = 3, D: int = 3, T: int = 9, scale: float = 1.,
                      dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(B, K, D, T, generator=gen, dtype=dtype)
    z[:, 1] += z[:, 0]  # some dependence, so that the loss is not ~0
    return z


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize('normalize', NORMALIZATIONS)
@pytest.mark.parametrize('delay', [True, False])
@pytest.mark.parametrize('name', KERNELS)
def test_loss_matches_dense_reference(name, delay, normalize):
    # Scale 4 without normalization: squared distances of 10 to 500, every Gaussian radius matters.
    streams = dependent_streams(0, scale=4. if normalize == 'none' else 1.)
    expected = reference_loss(streams, name, delay, normalize, seed=3)
    assert abs(expected) > 1e-4  # a test on ~0 values would not see errors of scale
    for block_size in (4, 7, 64):  # several blocks, a block not dividing n = 14 or 18, a single block
        loss = MMDLoss(name, delay=delay, normalize=normalize, block_size=block_size)
        got = loss(streams, generator=torch.Generator().manual_seed(3))
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('name', KERNELS)
def test_exclude_shared_matches_dense_reference(name):
    streams = dependent_streams(1)
    expected = reference_loss(streams, name, True, 'codebook', seed=5, exclude_shared=True)
    loss = MMDLoss(name, block_size=5, exclude_shared=True, normalize='codebook')
    got = loss(streams, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    plain = MMDLoss(name, block_size=5, normalize='codebook')(streams, generator=torch.Generator().manual_seed(5))
    assert abs(float(plain - got)) > 1e-6  # the option changes the estimate


def test_max_rows_uses_exactly_max_rows(monkeypatch):
    streams = dependent_streams(2, B=3, T=22)  # n = 3 * 20 = 60 rows
    seen = []

    def spy(x, y, *args, **kwargs):
        seen.append((tuple(x.shape), tuple(y.shape)))
        return mmd_module.__dict__['_spied'](x, y, *args, **kwargs)

    monkeypatch.setitem(mmd_module.__dict__, '_spied', mmd_module.mmd2_unbiased)
    monkeypatch.setattr(mmd_module, 'mmd2_unbiased', spy)
    loss = MMDLoss('gaussian', max_rows=17, block_size=5, normalize='codebook')
    got = loss(streams, generator=torch.Generator().manual_seed(7))
    assert seen == [((17, 9), (17, 9))]
    expected = reference_loss(streams, 'gaussian', True, 'codebook', seed=7, max_rows=17)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # Fewer rows than max_rows: no subsampling.
    full = MMDLoss('gaussian', max_rows=1000, normalize='codebook')(streams, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(full, reference_loss(streams, 'gaussian', True, 'codebook', seed=7))


def test_float32_accuracy_many_rows():
    # n = 1500 float32 rows: tile sums accumulated in float64 keep the result at float32 round-off
    # of the individual kernel values, far below the size of the three terms (~1).
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 8, generator=gen)
    y = x[torch.randperm(1500, generator=gen)] + 0.3 * torch.randn(1500, 8, generator=gen)
    got = mmd2_unbiased(x, y, 'gaussian', block_size=256)
    xd, yd = x.double(), y.double()
    expected = mmd2_unbiased(xd, yd, 'gaussian', block_size=1500)  # float64 tiles
    assert got.dtype == torch.float32
    assert abs(float(got) - float(expected)) < 1e-6
    # The float64 path against the dense formula on a subset, to anchor it.
    torch.testing.assert_close(mmd2_unbiased(xd[:300], yd[:300], 'gaussian', block_size=64),
                               dense_mmd2('gaussian', xd[:300], yd[:300]), rtol=1e-10, atol=1e-12)


def test_linear_kernel_closed_form():
    # With a per-codebook row shuffle, sum_i y_i = sum_i x_i and sum_i |y_i|^2 = sum_i |x_i|^2,
    # so eq. (7) reduces to -2 / (n - 1) * (biased) total variance of x: checks the 1 / n(n-1)
    # and 1 / n^2 normalizations with n = number of rows.
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, 3, 4, generator=gen, dtype=torch.float64) + 1.
    x, y = z.reshape(50, -1), shuffle_codebooks(z, gen).reshape(50, -1)
    expected = -2 / 49 * ((x - x.mean(0)) ** 2).sum(1).mean()
    torch.testing.assert_close(mmd2_unbiased(x, y, 'linear', block_size=7), expected, rtol=1e-10, atol=1e-12)


def test_no_grad_path_and_grad_path_agree():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 5, generator=gen), torch.randn(20, 5, generator=gen)
    with torch.no_grad():
        a = mmd2_unbiased(x, y, 'gaussian', block_size=6)
    b = mmd2_unbiased(x.requires_grad_(), y, 'gaussian', block_size=6)
    assert b.requires_grad and not a.requires_grad
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize('name', KERNELS)
def test_gradcheck_blocked(name):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    kernel = build_kernel(name)
    assert torch.autograd.gradcheck(lambda a, b: mmd2_unbiased(a, b, kernel, block_size=3), (x, y))
    pairs = torch.tensor([[0, 0], [2, 5], [6, 1]])
    assert torch.autograd.gradcheck(lambda a, b: mmd2_unbiased(a, b, kernel, block_size=3, exclude_pairs=pairs),
                                    (x, y))


@pytest.mark.parametrize('normalize', NORMALIZATIONS)
def test_gradcheck_loss(normalize):
    streams = dependent_streams(3, B=2, K=2, D=2, T=5).requires_grad_()
    loss = MMDLoss('gaussian', normalize=normalize, block_size=4, exclude_shared=True)
    assert torch.autograd.gradcheck(lambda s: loss(s, generator=torch.Generator().manual_seed(0)), (streams,))


def test_gradient_matches_dense_autograd():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(30, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(30, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    for name in KERNELS:
        got = torch.autograd.grad(mmd2_unbiased(x, y, name, block_size=8), (x, y))
        expected = torch.autograd.grad(dense_mmd2(name, x, y), (x, y))
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- invariances, shuffle, delay
def test_row_permutation_invariance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(23, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(23, 4, generator=gen, dtype=torch.float64) + 0.5
    for name in KERNELS:
        base = mmd2_unbiased(x, y, name, block_size=5)
        p, q = torch.randperm(23, generator=gen), torch.randperm(23, generator=gen)
        torch.testing.assert_close(mmd2_unbiased(x[p], y[q], name, block_size=5), base, rtol=1e-12, atol=1e-14)


def test_shuffle_codebooks():
    z = torch.randn(40, 3, 2, generator=torch.Generator().manual_seed(0))
    out, index = shuffle_codebooks(z, torch.Generator().manual_seed(1), return_index=True)
    assert out.shape == z.shape
    for k in range(3):
        # Same multiset of rows per codebook: sort rows lexicographically by their values.
        assert torch.equal(torch.sort(out[:, k, 0])[0], torch.sort(z[:, k, 0])[0])
        assert torch.equal(out[:, k], z[index[:, k], k])
        assert not torch.equal(out[:, k], z[:, k])  # each codebook, the first included, is permuted
    assert not torch.equal(index[:, 0], index[:, 1])  # independent permutations
    again = shuffle_codebooks(z, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    other = shuffle_codebooks(z, torch.Generator().manual_seed(2))
    assert not torch.equal(out, other)


def test_shared_pairs():
    index = torch.tensor([[0, 0], [2, 1], [1, 2]])  # row 0 takes both codebooks from joint row 0
    assert shared_pairs(index).tolist() == [[0, 0], [1, 1], [1, 2], [2, 1], [2, 2]]


def test_apply_delay_indices():
    B, K, D, T = 2, 4, 3, 7
    t = torch.arange(T).view(1, 1, 1, T)
    k = torch.arange(K).view(1, K, 1, 1)
    z = (100 * k + t).expand(B, K, D, T).float()
    out = apply_delay(z)
    assert out.shape == (B, K, D, T - K + 1)
    for j in range(T - K + 1):
        # Frame j holds codebook k from original frame j + (K - 1) - k.
        assert out[0, :, 0, j].tolist() == [100 * kk + j + K - 1 - kk for kk in range(K)]
    assert torch.equal(out[1], out[0])


def test_apply_delay_matches_audiocraft_pattern():
    codebooks_patterns = pytest.importorskip('audiocraft.modules.codebooks_patterns')
    B, K, T = 2, 4, 9
    codes = 100 * torch.arange(K).view(1, K, 1) + torch.arange(T).view(1, 1, T) + 1000 * torch.arange(B).view(B, 1, 1)
    pattern = codebooks_patterns.DelayedPatternProvider(n_q=K).get_pattern(T)
    sequence, _, _ = pattern.build_pattern_sequence(codes, special_token=-1)
    full_steps = (sequence != -1).all(dim=1).all(dim=0)  # LM steps where every codebook is a real frame
    expected = sequence[:, :, full_steps]
    assert expected.shape[-1] == T - K + 1
    assert torch.equal(apply_delay(codes[:, :, None].float())[:, :, 0].long(), expected)


# ---------------------------------------------------------------- statistics
def mixture_streams(gen: torch.Generator, B: int = 4, K: int = 3, D: int = 4, T: int = 34) -> torch.Tensor:
    """Each codebook drawn independently from its own 4-component Gaussian mixture: [B, K, D, T]."""
    streams = []
    for _ in range(K):
        means = 3 * torch.randn(4, D, generator=gen, dtype=torch.float64)
        labels = torch.randint(4, (B, T), generator=gen)
        streams.append(means[labels] + 0.5 * torch.randn(B, T, D, generator=gen, dtype=torch.float64))
    return torch.stack(streams, 1).permute(0, 1, 3, 2)


def _mean_in_standard_errors(loss: MMDLoss, dependent: bool, seeds: int = 20) -> float:
    values = []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        z = mixture_streams(gen)
        if dependent:
            # Codebook 1 at frame t - 1 copies codebook 0 at frame t: copies after delay alignment.
            shift = 1 if loss.delay else 0
            z[:, 1, :, :z.shape[-1] - shift] = z[:, 0, :, shift:]
        values.append(float(loss(z, generator=gen)))
    v = torch.tensor(values)
    return float(v.mean() / (v.std() / seeds ** 0.5))


@pytest.mark.parametrize('name', ['gaussian', 'squared_inverse', 'quadratic'])
def test_independent_codebooks_give_zero_mean(name):
    # Without the pairs that share a code, every compared pair is made of distinct cells of the
    # code matrix: under independence the expectation is exactly 0.
    assert abs(_mean_in_standard_errors(MMDLoss(name, exclude_shared=True, normalize='codebook'), dependent=False)) < 3


def test_eq7_is_biased_below_zero_under_independence():
    # Characterization of the paper's estimator (see MMDLoss docstring): shuffled rows reuse the
    # joint rows' codes, which inflates the cross term by O(K / n), the order of its noise.
    assert _mean_in_standard_errors(MMDLoss('gaussian', normalize='codebook'), dependent=False) < -3


@pytest.mark.parametrize('name, delay, exclude_shared', [
    ('gaussian', True, True), ('gaussian', False, True), ('squared_inverse', True, True),
    ('quadratic', True, True), ('gaussian', True, False), ('quadratic', False, False)])
def test_copied_codebook_gives_positive_loss(name, delay, exclude_shared):
    # Not listed: the squared inverse kernel (sigma = 12, k ~ 0.96 at these distances) with the
    # paper's eq. (7): its negative bias outweighs the copy at n = 128 rows (mean < 0).
    # Unit-variance codebooks (normalize='codebook'): the kernel radii and margins assume that scale.
    loss = MMDLoss(name, delay=delay, exclude_shared=exclude_shared, normalize='codebook')
    assert _mean_in_standard_errors(loss, dependent=True) > 10


def test_default_loss_detects_a_copied_codebook():
    """The config default (normalize='none', the paper's eq. (7), Gaussian radii) sees the copy."""
    # 3 standard errors over 20 seeds: one-sided p < 0.005 (t, 19 degrees of freedom).
    assert _mean_in_standard_errors(MMDLoss('gaussian'), dependent=True) > 3


# ---------------------------------------------------------------- errors
def test_errors():
    loss = MMDLoss()
    bad = torch.randn(2, 3, 4, 5)
    bad[1, 2, 3, 4] = float('nan')
    with pytest.raises(ValueError, match=r'streams.*NaN.*\(2, 3, 4, 5\)'):
        loss(bad)
    with pytest.raises(ValueError, match=r'streams.*inf.*\(2, 3, 4, 5\)'):
        loss(torch.full((2, 3, 4, 5), float('inf')))
    with pytest.raises(ValueError, match=r'at least 2 rows.*\(1, 2, 3, 2\)'):
        loss(torch.randn(1, 2, 3, 2))  # delay leaves one frame
    with pytest.raises(ValueError, match=r'at least 2 codebooks.*\(2, 1, 3, 5\)'):
        loss(torch.randn(2, 1, 3, 5))
    with pytest.raises(ValueError, match=r'T = 3.*\(2, 4, 3, 3\)'):
        loss(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r'T >= K.*\(2, 4, 3, 3\)'):
        apply_delay(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r'\[B, K, D, T\].*\(3, 4\)'):
        loss(torch.randn(3, 4))
    with pytest.raises(ValueError, match="Unknown kernel 'rbf'"):
        MMDLoss('rbf')
    with pytest.raises(ValueError, match='sigma'):
        MMDLoss('gaussian', kernel_kwargs={'sigmas': [1., 0.]})
    with pytest.raises(ValueError, match='sigma'):
        MMDLoss('squared_inverse', kernel_kwargs={'sigma': -2.})
    with pytest.raises(ValueError, match="Unknown normalization 'std'"):
        MMDLoss(normalize='std')
    with pytest.raises(ValueError, match='max_rows.*1'):
        MMDLoss(max_rows=1)
    with pytest.raises(ValueError, match=r'at least 2 rows.*\(1, 4\)'):
        mmd2_unbiased(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match=r'x \(5, 4\) and y \(5, 3\)'):
        mmd2_unbiased(torch.randn(5, 4), torch.randn(5, 3))


@pytest.mark.parametrize('kernel', ['gaussian', 'squared_inverse', 'linear', 'quadratic'])
def test_from_config_is_the_explicit_loss(kernel):
    """`MMDLoss.from_config` reads each kernel's own keys (`config_keys`) and the loss keys of the block."""
    import omegaconf
    from audiocraft_mmd.environment import CONFIG_DIR
    block = omegaconf.OmegaConf.load(CONFIG_DIR / 'solver' / 'compression' / 'default.yaml').mmd
    cfg = omegaconf.OmegaConf.merge(block, {'kernel': kernel, 'normalize': 'codebook', 'max_rows': 40})
    kwargs = {'gaussian': {'sigmas': tuple(float(s) for s in cfg.sigmas)},
              'squared_inverse': {'sigma': float(cfg.sigma)}}.get(kernel, {})
    explicit = MMDLoss(kernel, kernel_kwargs=kwargs, delay=cfg.delay, normalize='codebook', max_rows=40,
                       block_size=cfg.block_size, exclude_shared=cfg.exclude_shared)
    streams = dependent_streams(4)
    from audiocraft_mmd.losses.mmd_config import MMDLossConfig
    got = MMDLoss.from_config(MMDLossConfig.parse(cfg))(streams, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, explicit(streams, generator=torch.Generator().manual_seed(1)))
