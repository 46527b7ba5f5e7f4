# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Shuffle-free MMD^2 between the joint rows and the product of their empirical marginals (`mmd.marginals:
closed_form`, issue #29; dHSIC, Pfister et al., JRSS-B 2018).

For a kernel that is a product over codebooks, k(x, y) = prod_k k_k(x^k, y^k) (`Kernel.factorizes`: the
multi-scale Gaussian, radius by radius), the shuffle estimator of eq. (7) averaged over *all* the K independent
permutations of `shuffle.shuffle_codebooks` has a closed form in the K per-codebook Gram matrices G_k = [k_k(x_i^k,
x_j^k)] (n x n, diagonal 1 for the Gaussian), with a = 1 / (n (n - 1)):

    A = a sum_{i != j} prod_k G_k[i, j]                  within-joint term (eq. (7) as is)
    C = prod_k a sum_{i != j} G_k[i, j]                  within-shuffled term: rows i != j of a shuffle take
                                                         distinct rows of each codebook, uniformly
    B = 1/n sum_i prod_k rho_k(i),  rho_k(i) = 1/n sum_j G_k[i, j]
                                                         cross term: row j of codebook k is any row, uniformly
    MMD^2 = A + C - 2 B                                  (one such sum per radius, added)

so it carries no permutation noise (tests check the equality by brute force at small n). Form and bias: A and C
are U-statistics (diagonals out), B is a V-statistic in each codebook's row mean (the diagonal G_k[i, i] in),
exactly what the shuffle's cross sum averages to, so it keeps eq. (7)'s shared-pair bias: under independent
codebooks its expectation is -2 (prod_k E rho_k - prod_k mu_k) = -2/n sum_k (k_k(x,x) - mu_k) prod_{l != k}
mu_l + O(1/n^2), mu_k = E k_k(x^k, x'^k) (the shuffle's -2 K Delta / n). With ``exclude_diagonal`` (the
counterpart of `exclude_shared`) the row means leave the diagonal out, rho_k(i) = 1/(n-1) sum_{j != i} G_k[i,
j]; each of A, B, C then has expectation prod_k mu_k under independence (different codebooks' rho are
independent): the estimate is exactly 0 in expectation.

Cost and memory: one batched matmul gives the K per-codebook distance tiles, 2 n^2 F flops over the upper
tiles, against 3 [n, F] x [F, n] products for eq. (7)'s XX, XY and YY sums; then K + 1 exponentials per radius
and entry (2 passes with a gradient: the first gathers the row sums rho, which the gradient needs everywhere).
Extra memory: O(n K S) row sums for S radii (float64) and a few [K, block, block] tiles. With a `TileShare`
(global scope, tile-parallel) each rank computes its share of the tiles; the row sums are reduced between the
passes.
"""
import typing as tp

import torch

from ..kernels import Kernel, build_kernel
from ..scope import TileShare
from .base import MMDEstimator, Reduce, check_factorizes
from .blocked import Tiles, gradient_in_forward

# exp(-t) for t beyond this is a float32 subnormal (slow on CPU) or 0: the exponent is capped there, which moves
# each term by less than exp(-87) ~ 2e-38.
_MAX_EXPONENT = 87.


def _rates(kernel: Kernel) -> tp.List[float]:
    return [0.5 / s ** 2 for s in kernel.sigmas]  # type: ignore[attr-defined]


def _distance_tile(a: torch.Tensor, b: torch.Tensor, diagonal: bool) -> torch.Tensor:
    """Per-codebook squared distances [K, p, q] between a [K, p, D] and b [K, q, D]; exact 0 on a diagonal tile."""
    d = torch.baddbmm(a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1)[:, None, :], a, b.transpose(1, 2),
                      alpha=-2.)
    d.clamp_min_(0.)  # cancellation between near duplicates
    if diagonal:
        d.diagonal(dim1=1, dim2=2).zero_()
    return d


def _grams(d: torch.Tensor, rate: float) -> torch.Tensor:
    """Per-codebook Gaussian kernel tiles exp(-rate d), [K, p, q]."""
    return torch.mul(d, -rate).clamp_min_(-_MAX_EXPONENT).exp_()


def _nearest(d: torch.Tensor, diagonal: bool) -> tp.Optional[torch.Tensor]:
    """Each codebook's smallest distance off the diagonal [K] (CPU only, where it costs no device sync), or None.

    A radius for which rate * nearest > `_MAX_EXPONENT` has a Gram tile equal to the identity (diagonal tile) or
    to 0 up to exp(-87) per term: such (codebook, radius) pairs skip their exponentials (the paper's radii 0.1 and
    1 against distances of hundreds).
    """
    if d.device.type != 'cpu':
        return None
    if not diagonal:
        return d.amin(dim=(1, 2))
    d.diagonal(dim1=1, dim2=2).fill_(float('inf'))
    nearest = d.amin(dim=(1, 2)) if d.shape[1] > 1 else torch.full(d.shape[:1], float('inf'))
    d.diagonal(dim1=1, dim2=2).zero_()
    return nearest


def _live(nearest: tp.Optional[torch.Tensor], rate: float, K: int) -> tp.List[int]:
    """Codebooks whose Gram tile at this rate is not (up to exp(-87) per term) the identity or 0."""
    if nearest is None:
        return list(range(K))
    return [k for k in range(K) if rate * float(nearest[k]) <= _MAX_EXPONENT]


def _upper_tiles(n: int, block_size: int) -> tp.Iterator[tp.Tuple[slice, slice]]:
    starts = range(0, n, block_size)
    blocks = [slice(s, min(s + block_size, n)) for s in starts]
    for bi, i in enumerate(blocks):
        for j in blocks[bi:]:
            yield i, j


def _distance_tiles(z: torch.Tensor, block_size: int, tiles: Tiles) -> tp.Iterator[tp.Tuple[
        slice, slice, bool, torch.Tensor, tp.Optional[torch.Tensor]]]:
    """(i, j, diagonal, distances [K, |i|, |j|], nearest) of this share's upper tiles of rows z [K, n, D]."""
    for i, j in _upper_tiles(z.shape[1], block_size):
        if tiles.take():
            diagonal = i == j
            d = _distance_tile(z[:, i], z[:, j], diagonal)
            yield i, j, diagonal, d, _nearest(d, diagonal)


class _Statistics(tp.NamedTuple):
    joint: torch.Tensor  # [S] float64, sum_{i != j} prod_k G_k[i, j] per radius
    rows: torch.Tensor   # [n, K, S] float64, sum_j G_k[i, j] (diagonal in)


def _first_pass(z: torch.Tensor, rates: tp.List[float], block_size: int, tiles: Tiles) -> _Statistics:
    n, K = z.shape[1], z.shape[0]
    joint = torch.zeros(len(rates), dtype=torch.float64, device=z.device)
    rows = torch.zeros(n, K, len(rates), dtype=torch.float64, device=z.device)
    for i, j, diagonal, d, nearest in _distance_tiles(z, block_size, tiles):
        for s, rate in enumerate(rates):
            live = _live(nearest, rate, K)
            if diagonal and len(live) < K:  # an identity tile: 1 on the diagonal
                rows[i, :, s] += 1.
            if not live:
                continue
            g = _grams(d if len(live) == K else d[live], rate)
            if len(live) == K:  # else the joint tile is 0 off the diagonal
                prod = g.prod(0)
                total = prod.sum().double()
                joint[s] += total - prod.diagonal().sum().double() if diagonal else 2. * total  # 2: the mirror
            if diagonal and len(live) < K:
                rows[i, live, s] -= 1.
            if not diagonal:
                rows[j, live, s] += g.sum(1).t().double()
            rows[i, live, s] += g.sum(2).t().double()
    return _Statistics(joint, rows)


def _product_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    """prod over ``dim`` of t leaving out each index in turn (no division: factors may be 0)."""
    return torch.stack([torch.cat([t.narrow(dim, 0, k), t.narrow(dim, k + 1, t.shape[dim] - k - 1)], dim).prod(dim)
                        for k in range(t.shape[dim])], dim)


def _second_pass(z: torch.Tensor, rates: tp.List[float], block_size: int, tiles: Tiles,
                 within: torch.Tensor, rho: torch.Tensor, rho_weight: float) -> torch.Tensor:
    """Gradient w.r.t. z [K, n, D] of A + C - 2 B, from the coefficients of each distance d_k(i, j).

    With everything summed over ordered pairs and symmetrized, dV/dd_k(i, j) for i != j is, per radius r,
    -r [2 a prod_l G_l + 2 a prod_{l != k} c_l G_k - 2 rho_weight (P_k(i) + P_k(j)) G_k], with c_l = a sum_{i != j}
    G_l, P_k(i) = prod_{l != k} rho_l(i) and rho_weight = d rho / d G / n; then d d_k(i, j) / d z_i^k = 2 (z_i^k -
    z_j^k) (the diagonal's coefficient multiplies 0).
    """
    K, n, _ = z.shape
    a = 1. / (n * (n - 1))
    others = _product_except(within, 0).to(z.dtype)  # [K, S] prod_{l != k} c_l
    partial = _product_except(rho, 1).to(z.dtype)    # [n, K, S] P_k(i)
    grad = torch.zeros_like(z)
    for i, j, diagonal, d, nearest in _distance_tiles(z, block_size, tiles):
        coef = torch.zeros_like(d)
        for s, rate in enumerate(rates):
            live = _live(nearest, rate, K)
            if not live:  # identity or 0 tiles: no distance off the diagonal moves them
                continue
            g = _grams(d if len(live) == K else d[live], rate)
            if len(live) == K:  # the joint term, the same coefficient for every codebook (else 0)
                coef.add_(g.prod(0), alpha=-2. * a * rate)
            # the -2 B and the C terms share the factor G_k
            factor = (partial[j][:, live, s].t()[:, None, :] + partial[i][:, live, s].t()[:, :, None])
            factor.mul_(-2. * rho_weight).add_(2. * a * others[live, s, None, None])
            coef[live] += g.mul_(factor).mul_(-rate)
        # grad z_i^k = 2 sum_j coef[k, i, j] (z_i^k - z_j^k), and likewise for the j rows on a mirror tile.
        grad[:, i] += 2. * (coef.sum(2, keepdim=True) * z[:, i] - torch.bmm(coef, z[:, j]))
        if not diagonal:
            grad[:, j] += 2. * (coef.sum(1)[:, :, None] * z[:, j] - torch.bmm(coef.transpose(1, 2), z[:, i]))
    return grad


def _closed_form(rows: torch.Tensor, rates: tp.List[float], block_size: int, exclude_diagonal: bool,
                 share: tp.Optional[TileShare], with_grad: bool
                 ) -> tp.Tuple[torch.Tensor, tp.Optional[tp.List[torch.Tensor]]]:
    n = rows.shape[0]
    z = rows.transpose(0, 1).contiguous()  # [K, n, D]: one batched matmul per tile
    stats = _first_pass(z, rates, block_size, Tiles(share))
    joint, row_sums = stats.joint, stats.rows
    if share is not None:
        both = share.reduce(torch.cat([joint, row_sums.flatten()]))
        joint, row_sums = both[:len(rates)], both[len(rates):].view_as(row_sums)
    a = 1. / (n * (n - 1))
    within = (row_sums.sum(0) - n) * a  # [K, S]: the diagonal of a Gaussian Gram is 1
    if exclude_diagonal:
        rho, rho_weight = (row_sums - 1.) / (n - 1), 1. / (n * (n - 1))
    else:
        rho, rho_weight = row_sums / n, 1. / n ** 2
    value = (joint * a + within.prod(0) - 2. * rho.prod(1).mean(0)).sum()
    if not with_grad:
        return value, None
    grad = _second_pass(z, rates, block_size, Tiles(share), within, rho, rho_weight).transpose(0, 1)
    if share is not None:  # the value is already whole: only the gradient is scaled by W
        return value, [grad * share.world]
    return value, [grad]


def closed_form_mmd2(rows: torch.Tensor, kernel: tp.Union[Kernel, str] = 'gaussian', block_size: int = 1024,
                     exclude_diagonal: bool = False, share: tp.Optional[TileShare] = None) -> torch.Tensor:
    """Shuffle-free MMD^2 between the joint rows and the product of their empirical marginals (see the module).

    Args:
        rows: [n, K, D] joint rows (K codebooks of dimension D), n >= 2.
        kernel: a kernel that factorizes over codebooks (the multi-scale Gaussian), or its name.
        block_size: tile side; memory grows as K block_size^2.
        exclude_diagonal: row means without the diagonal (the `exclude_shared` counterpart, 0 in expectation
            under independence).
        share: compute only this rank's share of the tiles (global scope, tile-parallel), the same rows on
            every rank; the value is whole on every rank, the gradient W times this rank's share.
    Returns:
        Scalar tensor in the rows' dtype (float32 for half precision); gradient computed with the value.
    """
    if isinstance(kernel, str):
        kernel = build_kernel(kernel)
    check_factorizes(kernel)
    if rows.dim() != 3 or rows.shape[0] < 2:
        raise ValueError(f"closed_form_mmd2 expects rows of shape [n, K, D] with n >= 2, got {tuple(rows.shape)}.")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}.")
    if rows.dtype not in (torch.float32, torch.float64):
        rows = rows.float()
    rates = _rates(kernel)

    def compute(rows: torch.Tensor, with_grad: bool):
        value, grads = _closed_form(rows, rates, block_size, exclude_diagonal, share, with_grad)
        return value, grads

    with torch.autocast(device_type=rows.device.type, enabled=False):
        value = gradient_in_forward(compute, rows)
    return value.to(rows.dtype)


class ClosedForm(MMDEstimator):
    """The shuffle estimate averaged over all the shuffles, in closed form (see the module docstring);
    `exclude_shared` leaves the diagonal out of the row means. Not with the bank: every step would pay the O(n^2)
    estimate over every bank row."""
    marginals = 'closed_form'
    needs_factorizing_kernel = True

    def __call__(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator],
                 share: tp.Optional[TileShare] = None, reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
        return closed_form_mmd2(rows, self.kernel, self.block_size, self.exclude_shared, share)
