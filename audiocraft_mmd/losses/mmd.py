# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""MMD independence loss between codebook streams (paper, section 3, eq. (7), Algorithm 1).

The loss compares n "joint" rows (the K codes of one aligned frame, concatenated) with n
"shuffled" rows (each codebook's rows permuted independently, which samples the product
of the marginals) with the unbiased MMD^2 estimator of eq. (7).

Scale: n is B * T' (about 10^4 rows of K * D = 512 features for a macro-batch), so the
kernel matrices are never materialized. :func:`mmd2_unbiased` walks [block, block] tiles
(only those on and above the diagonal for the two within-sample sums, k being symmetric),
accumulating tile sums in float64, and, when a gradient is needed, the gradients of x and
y in the same pass: the loss is a scalar, so its gradient is known at forward time; saving
it costs O(n F) and avoids recomputing every tile in backward. Per tile: one matmul for the
statistic, the kernel, two matmuls for the gradients; on CPU the loss is matmul bound.
Extra memory: three [block, block] tiles and a few [n, F] buffers (gradients, augmented rows).
"""

import typing as tp

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .kernels import Kernel, build_kernel

NORMALIZATIONS = ('none', 'codebook', 'dimension')


class _Rows(tp.NamedTuple):
    """Rows and their augmented forms, so that one matmul gives a whole statistic tile.

    For radial kernels ``left = [a, |a|^2, 1]`` and ``right = [-2 a, 1, |a|^2]``, both [n, F + 2]:
    ``left_i . right_j = |a_i|^2 + |a_j|^2 - 2 a_i . a_j``, the squared distance, with no extra
    pass over the tile; the columns of ones also give the tile's row and column sums inside the
    gradient matmuls. For dot kernels both are the rows themselves.
    """
    value: torch.Tensor  # [n, F]
    left: torch.Tensor
    right: torch.Tensor

    @staticmethod
    def build(kernel: Kernel, a: torch.Tensor) -> '_Rows':
        if not kernel.radial:
            return _Rows(a, a, a)
        sq = a.pow(2).sum(-1, keepdim=True)
        ones = torch.ones_like(sq)
        return _Rows(a, torch.cat([a, sq, ones], dim=1), torch.cat([-2. * a, ones, sq], dim=1))

    def take(self, index: slice) -> '_Rows':
        return _Rows(self.value[index], self.left[index], self.right[index])


def _accumulate_tile(kernel: Kernel, a: _Rows, b: _Rows, weight: float, skip_diagonal: bool,
                     grad_a: tp.Optional[torch.Tensor], grad_b: tp.Optional[torch.Tensor]) -> torch.Tensor:
    """Adds one tile's weighted kernel sum and, if asked, its gradient contributions.

    The tile stands for the terms ``weight * k(a_i, b_j)``; with ``skip_diagonal`` the
    terms i == j are left out (a and b are then the same rows).

    Args:
        a: p rows, b: q rows (see :class:`_Rows`).
        grad_a: [p, F] and grad_b: [q, F] accumulators (views), or None for forward only.
    Returns:
        The weighted tile sum, float64 scalar tensor.
    """
    s = a.left @ b.right.t()  # [p, q] squared distances or inner products
    if kernel.radial:
        # Cancellation can make the distance of (near) duplicate rows slightly negative.
        s.clamp_min_(0.)
    # With skip_diagonal the kernel removes from the sum the very diagonal values it added (not
    # k(x_i, x_i) recomputed another way, which would differ by the matmul form's round-off).
    total, deriv = kernel.evaluate_tile(s, derivative=grad_a is not None, skip_diagonal=skip_diagonal)
    total = total * weight
    if grad_a is None or grad_b is None:
        return total
    assert deriv is not None
    if skip_diagonal:
        deriv.diagonal().zero_()
    # The weight is applied to the [p, F] and [q, F] products, never to the tile.
    if kernel.radial:
        # d s_ij / d a_i = 2 (a_i - b_j), d s_ij / d b_j = 2 (b_j - a_i), with G = deriv:
        # grad a_i = 2 (sum_j G_ij) a_i - 2 (G b)_i, grad b_j = 2 (sum_i G_ij) b_j - 2 (G^T a)_j.
        F = a.value.shape[1]
        from_b = deriv @ b.right  # [-2 G b, row sums of G, G |b|^2]
        grad_a.add_(from_b[:, :F].addcmul_(from_b[:, F:F + 1], a.value, value=2.), alpha=weight)
        from_a = deriv.t() @ a.left  # [G^T a, G^T |a|^2, column sums of G]
        grad_b.add_(from_a[:, :F].mul_(-2.).addcmul_(from_a[:, F + 1:], b.value, value=2.), alpha=weight)
    else:
        # d s_ij / d a_i = b_j, d s_ij / d b_j = a_i.
        grad_a.addmm_(deriv, b.value, alpha=weight)
        grad_b.addmm_(deriv.t(), a.value, alpha=weight)
    return total


def _blocks(n: int, block_size: int) -> tp.List[slice]:
    return [slice(start, min(start + block_size, n)) for start in range(0, n, block_size)]


def _view(grad: tp.Optional[torch.Tensor], index: slice) -> tp.Optional[torch.Tensor]:
    return None if grad is None else grad[index]


def _within_sum(kernel: Kernel, a: torch.Tensor, weight: float, block_size: int,
                grad: tp.Optional[torch.Tensor]) -> torch.Tensor:
    """weight * sum_{i != j} k(a_i, a_j), visiting only the tiles on and above the diagonal.

    Args:
        a: [n, F] rows; grad: [n, F] accumulator or None.
    """
    rows = _Rows.build(kernel, a)
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    blocks = _blocks(a.shape[0], block_size)
    for bi, i in enumerate(blocks):
        for j in blocks[bi:]:
            diagonal = i == j
            # k is symmetric: an off-diagonal tile also stands for its mirror image.
            tile_weight = weight if diagonal else 2. * weight
            total += _accumulate_tile(kernel, rows.take(i), rows.take(j), tile_weight, diagonal,
                                      _view(grad, i), _view(grad, j))
    return total


def _cross_sum(kernel: Kernel, x: torch.Tensor, y: torch.Tensor, weight: float, block_size: int,
               grad_x: tp.Optional[torch.Tensor], grad_y: tp.Optional[torch.Tensor]) -> torch.Tensor:
    """weight * sum_{i, j} k(x_i, y_j) over all n^2 pairs.

    Args:
        x, y: [n, F] rows; grad_x, grad_y: [n, F] accumulators or None.
    """
    rows_x, rows_y = _Rows.build(kernel, x), _Rows.build(kernel, y)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in _blocks(x.shape[0], block_size):
        for j in _blocks(y.shape[0], block_size):
            total += _accumulate_tile(kernel, rows_x.take(i), rows_y.take(j), weight, False,
                                      _view(grad_x, i), _view(grad_y, j))
    return total


def _mmd2_blocked(x: torch.Tensor, y: torch.Tensor, kernel: Kernel, block_size: int, cross_weight: float,
                  with_grad: bool) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor], tp.Optional[torch.Tensor]]:
    """Eq. (7) with the given weight of the cross sum and, with ``with_grad``, its gradients.

    Returns:
        (float64 value, d/dx or None, d/dy or None).
    """
    n = x.shape[0]
    grad_x = torch.zeros_like(x) if with_grad else None
    grad_y = torch.zeros_like(y) if with_grad else None
    within = 1. / (n * (n - 1))
    value = _within_sum(kernel, x, within, block_size, grad_x)
    value = value + _within_sum(kernel, y, within, block_size, grad_y)
    value = value + _cross_sum(kernel, x, y, cross_weight, block_size, grad_x, grad_y)
    return value, grad_x, grad_y


class _BlockedMMD2(torch.autograd.Function):
    """Autograd wrapper: the gradient is computed with the value, backward only scales it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, kernel: Kernel, block_size: int,  # type: ignore[override]
                cross_weight: float):
        value, grad_x, grad_y = _mmd2_blocked(x, y, kernel, block_size, cross_weight, with_grad=True)
        ctx.save_for_backward(grad_x, grad_y)
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        grad_x, grad_y = ctx.saved_tensors
        needs_x, needs_y = ctx.needs_input_grad[:2]
        return (grad_output * grad_x if needs_x else None,
                grad_output * grad_y if needs_y else None, None, None, None)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: tp.Union[Kernel, str] = 'gaussian',
                  block_size: int = 1024, exclude_pairs: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """Unbiased MMD^2 estimator of eq. (7) between the rows of x and the rows of y.

    MMD^2 = 1 / (n (n - 1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2 / n^2 sum_{i, j} k(x_i, y_j),
    with n the number of rows compared. Never materializes an n x n matrix: [block_size, block_size]
    tiles, float64 accumulation of the tile sums, and a custom autograd Function for the gradient
    of both x and y (first order only).

    Args:
        x: [n, F] samples of the first distribution (joint rows).
        y: [n, F] samples of the second distribution (shuffled rows).
        kernel: a :class:`Kernel` or a name for :func:`build_kernel` (default arguments).
        block_size: tile side; memory grows as block_size^2, Python overhead as (n / block_size)^2.
        exclude_pairs: optional [P, 2] long tensor of distinct pairs (i, j) left out of the cross
            sum, which then averages over the n^2 - P remaining pairs (see :class:`MMDLoss`,
            ``exclude_shared``). None gives eq. (7) exactly.
    Returns:
        Scalar tensor in x's dtype (float32 for half precision inputs).
    """
    if isinstance(kernel, str):
        kernel = build_kernel(kernel)
    if x.dim() != 2 or y.shape != x.shape:
        raise ValueError(f"mmd2_unbiased expects x and y of the same shape [n, F], got x {tuple(x.shape)} "
                         f"and y {tuple(y.shape)}.")
    if x.shape[0] < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 rows, got x of shape {tuple(x.shape)}.")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}.")
    if x.dtype not in (torch.float32, torch.float64):
        # Half precision cannot resolve the small differences between the three terms.
        x, y = x.float(), y.float()
    y = y.to(x.dtype)
    n = x.shape[0]
    n_cross = n ** 2 - (0 if exclude_pairs is None else exclude_pairs.shape[0])
    # Tiles must stay in the inputs' precision even inside an autocast region.
    with torch.autocast(device_type=x.device.type, enabled=False):
        if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
            value = _BlockedMMD2.apply(x, y, kernel, block_size, -2. / n_cross)
        else:
            value = _mmd2_blocked(x, y, kernel, block_size, -2. / n_cross, with_grad=False)[0]
        if exclude_pairs is not None:
            # Take the excluded pairs back out of the cross sum: O(P F) work, plain autograd.
            value = value + 2. / n_cross * _pair_sum(kernel, x, y, exclude_pairs)
    return value.to(x.dtype)


def _pair_sum(kernel: Kernel, x: torch.Tensor, y: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """sum_p k(x_{i_p}, y_{j_p}) for pairs [P, 2], as a float64 scalar; the statistic is computed directly."""
    a, b = x[pairs[:, 0]], y[pairs[:, 1]]
    s = (a - b).pow(2).sum(-1) if kernel.radial else (a * b).sum(-1)
    return kernel.profile(s).sum(dtype=torch.float64)


def apply_delay(z: torch.Tensor) -> torch.Tensor:
    """Aligns codebooks like MusicGen's "delay" pattern, keeping only fully defined frames.

    audiocraft's ``DelayedPatternProvider`` (delays = 0, 1, ..., K - 1) puts, at sequence step
    t, the code of codebook k from frame t - k. Here output frame j is that step for t = j + K - 1,
    the first step where every codebook holds a real frame: it holds
    (Z_0^t, Z_1^{t-1}, ..., Z_{K-1}^{t-K+1}), i.e. ``out[:, k, :, j] = z[:, k, :, j + K - 1 - k]``.
    Steps that would hold padding (special tokens) are dropped.

    Args:
        z: [B, K, D, T] codes.
    Returns:
        [B, K, D, T - K + 1] aligned codes.
    """
    if z.dim() != 4:
        raise ValueError(f"apply_delay expects z of shape [B, K, D, T], got {tuple(z.shape)}.")
    K, T = z.shape[1], z.shape[-1]
    if T < K:
        raise ValueError(f"apply_delay needs T >= K frames, got z of shape {tuple(z.shape)} (K={K}, T={T}).")
    length = T - K + 1
    return torch.stack([z[:, k, :, K - 1 - k:K - 1 - k + length] for k in range(K)], dim=1)


def _randperm(n: int, generator: tp.Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    rng_device = generator.device if generator is not None else torch.device('cpu')
    return torch.randperm(n, generator=generator, device=rng_device).to(device)


def shuffle_codebooks(z: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
                      return_index: bool = False) -> tp.Any:
    """Samples the product of the marginals: each codebook's rows get their own random permutation.

    All K codebooks are permuted (codebook 0 included, which is equivalent in distribution to
    keeping it fixed and simpler); permutations are drawn in codebook order from ``generator``.

    Args:
        z: [n, K, D] rows.
        generator: random generator (default: torch's global CPU generator).
        return_index: also return the permutations.
    Returns:
        [n, K, D] with ``out[:, k] = z[perm_k, k]``, and with ``return_index`` the [n, K] long
        tensor whose column k is perm_k.
    """
    if z.dim() != 3:
        raise ValueError(f"shuffle_codebooks expects z of shape [n, K, D], got {tuple(z.shape)}.")
    n, K = z.shape[:2]
    index = torch.stack([_randperm(n, generator, z.device) for _ in range(K)], dim=1)  # [n, K]
    shuffled = z[index, torch.arange(K, device=z.device)[None, :]]
    return (shuffled, index) if return_index else shuffled


def shared_pairs(index: torch.Tensor) -> torch.Tensor:
    """Distinct pairs (i, j) such that shuffled row j took at least one codebook from joint row i.

    Args:
        index: [n, K] permutations from :func:`shuffle_codebooks` (row j of codebook k came from index[j, k]).
    Returns:
        [P, 2] long tensor of (i, j), with n <= P <= n K.
    """
    n, K = index.shape
    j = torch.arange(n, device=index.device)[:, None].expand(n, K)
    codes = torch.unique(index * n + j)
    return torch.stack([codes // n, codes % n], dim=1)


def normalize_rows(rows: torch.Tensor, mode: str, eps: float = 1e-8) -> torch.Tensor:
    """Normalizes rows with statistics over the rows (kept in the autograd graph).

    - 'none': unchanged.
    - 'codebook': each codebook is centered and divided by one scalar so that its rows have
      unit mean squared norm (unit total variance); within-codebook geometry is kept.
    - 'dimension': each of the K * D features is standardized (zero mean, unit variance).

    Shuffling rows within a codebook leaves these statistics unchanged, so normalizing before
    or after the shuffle is the same.

    Args:
        rows: [n, K, D].
        mode: one of 'none', 'codebook', 'dimension'.
        eps: added to variances, so that constant codebooks / features stay finite (gradient too).
    Returns:
        [n, K, D].
    """
    if mode == 'none':
        return rows
    centered = rows - rows.mean(0, keepdim=True)
    if mode == 'codebook':
        power = centered.pow(2).sum(-1).mean(0)  # [K]
        return centered * torch.rsqrt(power + eps)[None, :, None]
    if mode == 'dimension':
        return centered * torch.rsqrt(centered.pow(2).mean(0, keepdim=True) + eps)
    raise ValueError(f"Unknown normalization {mode!r}; valid options are: {', '.join(NORMALIZATIONS)}.")


class MMDLoss(nn.Module):
    """Independence loss of Algorithm 1: MMD^2 between joint and codebook-shuffled code rows.

    Steps: align codebooks with the delay pattern (optional), merge batch and time into
    n = B * T' rows of [K, D], normalize, subsample (optional), shuffle each codebook's rows
    independently, flatten to [n, K * D] and return :func:`mmd2_unbiased` (eq. (7)).

    Normalization (default 'none', the paper's; measured by `make reproduce` at CPU scale, weight
    1e3, 2 seeds: 'codebook' collapsed the codes, mean code entropy 0.41 nats against 2.5 with
    'none', and TC rose to 30% against 5.7%). The kernel radii only mean something relative to the
    scale of the codes. With 'codebook', each codebook has unit total variance, so
    ||x - y||^2 is about 2K (8 for K = 4) between independent rows and the paper's radii
    {0.1, 1, 5, 10, 20, 50} span from near-duplicate detection to almost-global scale
    around it; every codebook weighs the same whatever the RVQ stage's residual norm (otherwise
    codebook 0 dominates the distances); within-codebook geometry is untouched. 'dimension'
    standardizes each of the K * D features: then ||x - y||^2 is about 2 K D (1024), the radii
    0.1, 1 and 5 give kernels that are ~0 off the diagonal, and low-variance (nearly dead)
    dimensions are amplified as much as informative ones. 'none' ties the radii to whatever
    scale the encoder learns. The statistics stay in the autograd graph (their cost is O(n F)
    against O(n^2 F) for the loss): the normalized loss is then invariant to rescaling the
    codes, so the encoder cannot lower it by inflating or shrinking its latents (with detached
    statistics it could: spreading the codes pushes every off-diagonal Gaussian term to 0).

    Subsampling (``max_rows``): m rows are drawn uniformly without replacement after the
    normalization (statistics use all rows), then shuffled among themselves. Given the
    macro-batch, this is exactly the estimator one would get from a macro-batch of m rows:
    the within-joint term is unbiased for the macro-batch average, the shuffle terms carry the
    same finite-sample effect as the full estimator (pairs x_i, y_j sharing a code, a fraction
    about K / m of the cross pairs instead of K / n), and the variance grows roughly as 1 / m
    (as 1 / m^2 near independence). Cost falls as m^2.

    Shared pairs (``exclude_shared``): eq. (7) treats the shuffled rows as independent of the
    joint rows, but shuffled row y_j reuses, for each codebook k, the code of joint row
    i = perm_k(j). Those about K n cross pairs (x_i, y_j) share a code, so their kernel value is
    larger on average, and even for independent codebooks the expected loss is
    -2 / n^2 * sum over shared pairs of (E[k | shared] - E[k]), about -2 K / n * Delta: a negative
    bias of the same order, 1 / n, as the estimator's standard deviation near independence (we
    measured about -20 standard errors over 20 seeds with the Gaussian kernel). With
    ``exclude_shared=True`` these pairs are left out of the cross average (divided by the
    n^2 - P remaining pairs; O(n K F) extra work); every remaining pair (x_i, y_j), like every
    within-joint or within-shuffled pair, then consists of distinct cells of the code matrix, so
    under independence the expectation is exactly 0. The default False is the paper's eq. (7).

    Random draws, in order, from ``generator``: the subsample permutation (if any), then one
    permutation per codebook.

    Args:
        kernel: kernel name for :func:`build_kernel` or a :class:`Kernel` instance.
        kernel_kwargs: keyword arguments for the kernel (e.g. ``{'sigmas': [1, 5]}``).
        delay: align codebooks with the "delay" pattern (see :func:`apply_delay`); False gives
            the "parallel" variant.
        normalize: 'none' (default, the paper's), 'codebook' or 'dimension', see above.
        max_rows: if set, use at most that many rows (>= 2).
        block_size: tile side for :func:`mmd2_unbiased`.
        eps: variance floor of the normalization.
        exclude_shared: leave the cross pairs that share a code out of the cross term (see above).
    """
    def __init__(self, kernel: tp.Union[str, Kernel] = 'gaussian', kernel_kwargs: tp.Optional[dict] = None,
                 delay: bool = True, normalize: str = 'none', max_rows: tp.Optional[int] = None,
                 block_size: int = 1024, eps: float = 1e-8, exclude_shared: bool = False):
        super().__init__()
        if isinstance(kernel, Kernel):
            if kernel_kwargs:
                raise ValueError("kernel_kwargs cannot be used with a Kernel instance.")
            self.kernel = kernel
        else:
            self.kernel = build_kernel(kernel, **(kernel_kwargs or {}))
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalization {normalize!r}; valid options are: {', '.join(NORMALIZATIONS)}.")
        if max_rows is not None and max_rows < 2:
            raise ValueError(f"max_rows must be at least 2 (or None), got {max_rows}.")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}.")
        self.delay = delay
        self.normalize = normalize
        self.max_rows = max_rows
        self.block_size = block_size
        self.eps = eps
        self.exclude_shared = exclude_shared

    def rows(self, streams: torch.Tensor) -> torch.Tensor:
        """Validated, aligned and normalized rows [n, K, D] from streams [B, K, D, T]."""
        if streams.dim() != 4:
            raise ValueError(f"MMDLoss expects streams of shape [B, K, D, T], got {tuple(streams.shape)}.")
        B, K, D, T = streams.shape
        if K < 2:
            raise ValueError(f"MMDLoss needs at least 2 codebooks, got streams of shape {tuple(streams.shape)}.")
        if not bool(torch.isfinite(streams).all()):
            raise ValueError(f"streams contains NaN or inf values (streams of shape {tuple(streams.shape)}).")
        if self.delay and T < K:
            raise ValueError(f"Delay of K - 1 = {K - 1} frames does not fit in T = {T} frames "
                             f"(streams of shape {tuple(streams.shape)}).")
        if streams.dtype not in (torch.float32, torch.float64):
            streams = streams.float()
        z = apply_delay(streams) if self.delay else streams
        n = B * z.shape[-1]
        if n < 2:
            raise ValueError(f"MMDLoss needs at least 2 rows (B * T' = {n}), got streams of shape "
                             f"{tuple(streams.shape)} (delay={self.delay}).")
        rows = z.permute(0, 3, 1, 2).reshape(n, K, D)
        return normalize_rows(rows, self.normalize, self.eps)

    def forward(self, streams: torch.Tensor, generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
        """MMD^2 between joint and shuffled rows.

        Args:
            streams: [B, K, D, T] quantized codes (K codebooks of dimension D, T frames).
            generator: random generator for the subsample and the shuffles.
        Returns:
            Scalar loss.
        """
        rows = self.rows(streams)
        n = rows.shape[0]
        if self.max_rows is not None and n > self.max_rows:
            rows = rows[_randperm(n, generator, rows.device)[:self.max_rows]]
            n = self.max_rows
        shuffled, index = shuffle_codebooks(rows, generator, return_index=True)
        exclude = shared_pairs(index) if self.exclude_shared else None
        return mmd2_unbiased(rows.reshape(n, -1), shuffled.reshape(n, -1), self.kernel, self.block_size, exclude)
