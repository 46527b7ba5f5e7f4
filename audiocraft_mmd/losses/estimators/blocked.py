# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Blocked unbiased MMD^2 (paper, eq. (7)) between two sets of rows: the engine of the shuffle estimators.

Scale: n is B * T' (about 10^4 rows of K * D = 512 features for a macro-batch), so the
kernel matrices are never materialized. :func:`mmd2_unbiased` walks [block, block] tiles
(only those on and above the diagonal for the two within-sample sums, k being symmetric),
accumulating tile sums in float64, and, when a gradient is needed, the gradients of x and
y in the same pass (:class:`GradientInForward`, which the memory bank uses too). Per tile: one matmul for the
statistic, the kernel, two matmuls for the gradients; on CPU the loss is matmul bound.
Extra memory: three [block, block] tiles and a few [n, F] buffers (gradients, augmented rows).
"""

import typing as tp

import torch
from torch.autograd.function import once_differentiable

from ..kernels import Kernel, build_kernel
from ..scope import TileShare


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
        grad_a: [p, F] and grad_b: [q, F] accumulators (views), or None: the gradient of a side is
            only computed when its accumulator is given (the memory bank needs one-sided tiles).
    Returns:
        The weighted tile sum, float64 scalar tensor.
    """
    s = a.left @ b.right.t()  # [p, q] squared distances or inner products
    if kernel.radial:
        # Cancellation can make the distance of (near) duplicate rows slightly negative.
        s.clamp_min_(0.)
    # With skip_diagonal the kernel removes from the sum the very diagonal values it added (not
    # k(x_i, x_i) recomputed another way, which would differ by the matmul form's round-off).
    with_grad = grad_a is not None or grad_b is not None
    total, deriv = kernel.evaluate_tile(s, derivative=with_grad, skip_diagonal=skip_diagonal)
    total = total * weight
    if not with_grad:
        return total
    assert deriv is not None
    if skip_diagonal:
        deriv.diagonal().zero_()
    # The weight is applied to the [p, F] and [q, F] products, never to the tile.
    if kernel.radial:
        # d s_ij / d a_i = 2 (a_i - b_j), d s_ij / d b_j = 2 (b_j - a_i), with G = deriv:
        # grad a_i = 2 (sum_j G_ij) a_i - 2 (G b)_i, grad b_j = 2 (sum_i G_ij) b_j - 2 (G^T a)_j.
        F = a.value.shape[1]
        if grad_a is not None:
            from_b = deriv @ b.right  # [-2 G b, row sums of G, G |b|^2]
            grad_a.add_(from_b[:, :F].addcmul_(from_b[:, F:F + 1], a.value, value=2.), alpha=weight)
        if grad_b is not None:
            from_a = deriv.t() @ a.left  # [G^T a, G^T |a|^2, column sums of G]
            grad_b.add_(from_a[:, :F].mul_(-2.).addcmul_(from_a[:, F + 1:], b.value, value=2.), alpha=weight)
    else:
        # d s_ij / d a_i = b_j, d s_ij / d b_j = a_i.
        if grad_a is not None:
            grad_a.addmm_(deriv, b.value, alpha=weight)
        if grad_b is not None:
            grad_b.addmm_(deriv.t(), a.value, alpha=weight)
    return total


def _blocks(n: int, block_size: int) -> tp.List[slice]:
    return [slice(start, min(start + block_size, n)) for start in range(0, n, block_size)]


def _view(grad: tp.Optional[torch.Tensor], index: slice) -> tp.Optional[torch.Tensor]:
    return None if grad is None else grad[index]


class Tiles:
    """Numbers the tiles of one estimate as they are visited and says which are this rank's (all without a share)."""

    def __init__(self, share: tp.Optional[TileShare] = None):
        self.share = share
        self.count = 0
        self.taken: tp.List[int] = []  # numbers of the tiles this rank computed (tests check the cover)

    def take(self) -> bool:
        number, self.count = self.count, self.count + 1
        mine = self.share is None or number % self.share.world == self.share.rank
        if mine:
            self.taken.append(number)
        return mine


def within_sum(kernel: Kernel, a: torch.Tensor, weight: float, block_size: int,
               grad: tp.Optional[torch.Tensor], tiles: tp.Optional[Tiles] = None) -> torch.Tensor:
    """weight * sum_{i != j} k(a_i, a_j), visiting only the tiles on and above the diagonal.

    Args:
        a: [n, F] rows; grad: [n, F] accumulator or None (gradient w.r.t. a added into it).
        tiles: the tiles this rank computes (default: all).
    Returns:
        float64 scalar tensor (this rank's tiles only, with a share).
    """
    tiles = tiles or Tiles()
    rows = _Rows.build(kernel, a)
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    blocks = _blocks(a.shape[0], block_size)
    for bi, i in enumerate(blocks):
        for j in blocks[bi:]:
            if not tiles.take():
                continue
            diagonal = i == j
            # k is symmetric: an off-diagonal tile also stands for its mirror image.
            tile_weight = weight if diagonal else 2. * weight
            total += _accumulate_tile(kernel, rows.take(i), rows.take(j), tile_weight, diagonal,
                                      _view(grad, i), _view(grad, j))
    return total


def cross_sum(kernel: Kernel, x: torch.Tensor, y: torch.Tensor, weight: float, block_size: int,
              grad_x: tp.Optional[torch.Tensor], grad_y: tp.Optional[torch.Tensor],
              tiles: tp.Optional[Tiles] = None) -> torch.Tensor:
    """weight * sum_{i, j} k(x_i, y_j) over all pairs.

    Args:
        x: [n, F], y: [m, F] rows; grad_x, grad_y: accumulators of their shapes or None.
        tiles: the tiles this rank computes (default: all).
    Returns:
        float64 scalar tensor (this rank's tiles only, with a share).
    """
    tiles = tiles or Tiles()
    rows_x, rows_y = _Rows.build(kernel, x), _Rows.build(kernel, y)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in _blocks(x.shape[0], block_size):
        for j in _blocks(y.shape[0], block_size):
            if tiles.take():
                total += _accumulate_tile(kernel, rows_x.take(i), rows_y.take(j), weight, False,
                                          _view(grad_x, i), _view(grad_y, j))
    return total


# compute(*tensors, with_grad) -> (value, one gradient per tensor, or None without with_grad)
Compute = tp.Callable[..., tp.Tuple[torch.Tensor, tp.Optional[tp.Sequence[torch.Tensor]]]]


class GradientInForward(torch.autograd.Function):
    """A scalar whose gradients are computed with its value, in forward; backward only scales them.

    The losses are scalars, so their gradients are known at forward time: saving them costs O(n F), where
    recomputing every tile in backward would cost the forward again. First order only.
    """

    @staticmethod
    def forward(ctx, compute: Compute, *tensors: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        value, grads = compute(*tensors, with_grad=True)
        ctx.save_for_backward(*grads)  # type: ignore[misc]
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        needs = ctx.needs_input_grad[1:]
        return (None,) + tuple(grad_output * g if need else None for g, need in zip(ctx.saved_tensors, needs))


def gradient_in_forward(compute: Compute, *tensors: torch.Tensor) -> torch.Tensor:
    """``compute``'s value, with :class:`GradientInForward` when a tensor needs a gradient (else no gradient work)."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return GradientInForward.apply(compute, *tensors)
    return compute(*tensors, with_grad=False)[0]


def shared_total(value: torch.Tensor, grads: tp.Optional[tp.Sequence[torch.Tensor]], share: tp.Optional[TileShare]
                 ) -> tp.Tuple[torch.Tensor, tp.Optional[tp.List[torch.Tensor]]]:
    """The whole estimate from this rank's share of its tiles, and the gradients each rank must hold.

    The value is summed over the ranks. The gradients w.r.t. the gathered rows are scaled by W: the gather's
    backward sums them over ranks, giving W times the whole gradient on every rank, as when every rank
    computes the whole estimate (`scope.gather_rows`), so audiocraft's gradient average stays right.
    """
    if share is None:
        return value, None if grads is None else list(grads)
    return share.reduce(value.clone()), None if grads is None else [g * share.world for g in grads]


def _mmd2_blocked(x: torch.Tensor, y: torch.Tensor, kernel: Kernel, block_size: int, cross_weight: float,
                  share: tp.Optional[TileShare], with_grad: bool
                  ) -> tp.Tuple[torch.Tensor, tp.Optional[tp.List[torch.Tensor]]]:
    """Eq. (7) with the given weight of the cross sum and, with ``with_grad``, its gradients [d/dx, d/dy]."""
    n = x.shape[0]
    grad_x = torch.zeros_like(x) if with_grad else None
    grad_y = torch.zeros_like(y) if with_grad else None
    within = 1. / (n * (n - 1))
    tiles = Tiles(share)
    value = within_sum(kernel, x, within, block_size, grad_x, tiles)
    value = value + within_sum(kernel, y, within, block_size, grad_y, tiles)
    value = value + cross_sum(kernel, x, y, cross_weight, block_size, grad_x, grad_y, tiles)
    return shared_total(value, None if grad_x is None else (grad_x, grad_y), share)  # type: ignore[arg-type]


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: tp.Union[Kernel, str] = 'gaussian',
                  block_size: int = 1024, exclude_pairs: tp.Optional[torch.Tensor] = None,
                  share: tp.Optional[TileShare] = None) -> torch.Tensor:
    """Unbiased MMD^2 estimator of eq. (7) between the rows of x and the rows of y.

    MMD^2 = 1 / (n (n - 1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2 / n^2 sum_{i, j} k(x_i, y_j),
    with n the number of rows compared. Never materializes an n x n matrix: [block_size, block_size]
    tiles, float64 accumulation of the tile sums, and the gradient of both x and y computed with the
    value (:class:`GradientInForward`, first order only).

    Args:
        x: [n, F] samples of the first distribution (joint rows).
        y: [n, F] samples of the second distribution (shuffled rows).
        kernel: a :class:`Kernel` or a name for :func:`build_kernel` (default arguments).
        block_size: tile side; memory grows as block_size^2, Python overhead as (n / block_size)^2.
        exclude_pairs: optional [P, 2] long tensor of distinct pairs (i, j) left out of the cross
            sum, which then averages over the n^2 - P remaining pairs (see :class:`MMDLoss`,
            ``exclude_shared``). None gives eq. (7) exactly.
        share: compute only this rank's share of the tiles, the same rows on every rank (global scope,
            tile-parallel): the value is the whole estimate on every rank, the gradient W times this
            rank's share (see :func:`shared_total`).
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

    def compute(x: torch.Tensor, y: torch.Tensor, with_grad: bool):
        return _mmd2_blocked(x, y, kernel, block_size, -2. / n_cross, share, with_grad)  # type: ignore[arg-type]

    # Tiles must stay in the inputs' precision even inside an autocast region.
    with torch.autocast(device_type=x.device.type, enabled=False):
        value = gradient_in_forward(compute, x, y)
        if exclude_pairs is not None:
            # Take the excluded pairs back out of the cross sum: O(P F) work, plain autograd, on every rank.
            value = value + 2. / n_cross * _pair_sum(kernel, x, y, exclude_pairs)
    return value.to(x.dtype)


def _pair_sum(kernel: Kernel, x: torch.Tensor, y: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """sum_p k(x_{i_p}, y_{j_p}) for pairs [P, 2], as a float64 scalar; the statistic is computed directly."""
    a, b = x[pairs[:, 0]], y[pairs[:, 1]]
    s = (a - b).pow(2).sum(-1) if kernel.radial else (a * b).sum(-1)
    return kernel.profile(s).sum(dtype=torch.float64)


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
