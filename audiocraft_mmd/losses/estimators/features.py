# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Random-feature (characteristic-function) MMD^2 between the joint rows and the product of their marginals
(`mmd.marginals: features`, issue #29): linear in the rows, and under global scope only (K + 1) M complex sums
cross the ranks.

For one radius sigma, the Gaussian kernel is k(x, y) = E_w cos(w . (x - y)), w ~ N(0, I / sigma^2) over the
F = K D features; the codebooks' blocks w_k of w are independent. With e_i = exp(i w . x_i), e_i^k = exp(i w_k .
x_i^k), S = sum_i e_i and S_k = sum_i e_i^k (n rows, a = 1 / (n (n - 1))), each term of the closed form
(:mod:`.closed_form`, A + C - 2 B) has an estimate from one frequency whose expectation over w is that
term exactly:

    A_w = a (|S|^2 - n)                                      (diagonal removed: |e_i| = 1)
    C_w = prod_k a (|S_k|^2 - n)                             (the w_k are independent)
    B_w = Re conj(S) prod_k S_k / n^(K + 1)                  (= 1/n sum_i prod_k conj(e_i^k) S_k / n)
    B_w = 1/n sum_i Re prod_k (conj(e_i^k) S_k - 1) / (n - 1)   with ``exclude_diagonal``

The estimate is the mean over M frequencies per radius (drawn fresh from the generator each call; the same
generator state on every rank under global scope), summed over radii: unbiased for the closed form given the
rows, with a Monte Carlo variance O(1 / M) on top of it. The frequencies are constants: the gradient reaches the
rows (the encoder) only, by autograd. Cost O(n M F) per radius, memory O(K n M) (the phases autograd keeps).

Global scope (``reduce``, an autograd-aware all-reduce sum, `scope.all_reduce_sum`): each rank sums its own
rows' e's, S, S_k and n are reduced (and the per-row sum of the `exclude_diagonal` B); the rows are never
gathered.
"""
import typing as tp

import torch

from ..kernels import Kernel
from ..scope import TileShare
from .base import MMDEstimator, OptionError, Reduce, check_factorizes

_CHUNK = 256  # frequencies per chunk


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _reduce_complex(reduce: Reduce, t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(reduce(torch.view_as_real(t).contiguous()))


def _unit(phase: torch.Tensor) -> torch.Tensor:
    return torch.complex(torch.cos(phase), torch.sin(phase))


def _radius_terms(z: torch.Tensor, w: torch.Tensor, n: torch.Tensor, exclude_diagonal: bool, reduce: Reduce
                  ) -> torch.Tensor:
    """mean over the M frequencies of A_w + C_w - 2 B_w for z [K, n_r, D], w [K, D, M]; float64 scalar."""
    K = z.shape[0]
    phase_k = torch.bmm(z, w)  # [K, n_r, M]
    e_k = _unit(phase_k)
    e = _unit(phase_k.sum(0))  # w . x_i = sum_k w_k . x_i^k
    sums = _reduce_complex(reduce, torch.cat([e.sum(0, keepdim=True), e_k.sum(1)]).to(torch.complex128))
    s, s_k = sums[0], sums[1:]  # [M], [K, M]
    a = 1. / (n * (n - 1))
    joint = a * (s.abs().pow(2) - n)
    within = (a * (s_k.abs().pow(2) - n)).prod(0)
    if exclude_diagonal:
        per_row = (e_k.conj().to(torch.complex128) * s_k[:, None, :] - 1.).prod(0) / (n - 1) ** K  # [n_r, M]
        cross = reduce(per_row.real.sum(0)) / n
    else:
        cross = (s.conj() * s_k.prod(0)).real / n ** (K + 1)
    return (joint + within - 2. * cross).mean()


def feature_mmd2(rows: torch.Tensor, kernel: Kernel, num_features: int,
                 generator: tp.Optional[torch.Generator] = None, exclude_diagonal: bool = False,
                 reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
    """Random-feature estimate of the closed-form MMD^2 (see the module docstring).

    Args:
        rows: [n_r, K, D] joint rows (this rank's, with ``reduce``; n >= 2 in all).
        kernel: a kernel that factorizes over codebooks (the multi-scale Gaussian).
        num_features: M, frequencies per radius.
        generator: draws the frequencies, radius by radius ([K, D, M] standard normals each).
        exclude_diagonal: the `exclude_shared` counterpart (0 in expectation under independence).
        reduce: autograd-aware all-reduce sum over ranks (global scope), or None.
    Returns:
        Scalar tensor in the rows' dtype.
    """
    check_factorizes(kernel)
    if rows.dim() != 3:
        raise ValueError(f"feature_mmd2 expects rows of shape [n, K, D], got {tuple(rows.shape)}.")
    if num_features < 1:
        raise ValueError(f"num_features must be positive, got {num_features}.")
    if rows.dtype not in (torch.float32, torch.float64):
        rows = rows.float()
    reduce = reduce or _identity
    n = reduce(torch.tensor(float(rows.shape[0]), dtype=torch.float64, device=rows.device))
    if float(n) < 2:
        raise ValueError(f"feature_mmd2 needs at least 2 rows in all, got rows of shape {tuple(rows.shape)}.")
    z = rows.transpose(0, 1)  # [K, n_r, D]
    K, _, D = z.shape
    rng_device = generator.device if generator is not None else torch.device('cpu')
    total = torch.zeros((), dtype=torch.float64, device=rows.device)
    with torch.autocast(device_type=rows.device.type, enabled=False):
        for sigma in kernel.sigmas:  # type: ignore[attr-defined]
            w = torch.randn(K, D, num_features, generator=generator, device=rng_device).to(rows) / sigma
            # chunks of frequencies keep the [K, n, chunk] phase tiles small (memory traffic, not flops)
            for chunk in w.split(_CHUNK, dim=2):
                share = chunk.shape[2] / num_features
                total = total + share * _radius_terms(z, chunk, n, exclude_diagonal, reduce)
    return total.to(rows.dtype)


class RandomFeatures(MMDEstimator):
    """The closed form estimated from `features` random frequencies per radius (see the module docstring); with
    the bank the whole estimate over current and bank rows; under global scope its sums cross the ranks."""
    marginals = 'features'
    config_keys = ('features',)
    supports_bank = True
    bank_exclude_shared = True
    crosses_ranks = 'reduce'
    needs_factorizing_kernel = True

    def __init__(self, kernel: Kernel, block_size: int = 1024, exclude_shared: bool = False, features: int = 1024):
        super().__init__(kernel, block_size, exclude_shared)
        if not isinstance(features, int) or isinstance(features, bool) or features < 1:
            raise OptionError('features', features, f"features must be a positive integer, got {features!r}.")
        self.features = features

    def __call__(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator],
                 share: tp.Optional[TileShare] = None, reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
        return feature_mmd2(rows, self.kernel, self.features, generator, self.exclude_shared, reduce)
