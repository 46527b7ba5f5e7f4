# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Kernels for the MMD independence loss (paper, Table 3).

Every kernel is a function of one scalar statistic of a pair of rows:

- "radial" kernels (multi-scale Gaussian, squared inverse) depend on the squared
  distance ``s = ||x - y||^2``;
- "dot" kernels (linear, quadratic) depend on the inner product ``s = x^T y``.

Both statistics come out of one matmul per tile (``||x||^2 + ||y||^2 - 2 x^T y`` for the
distance), so the blocked MMD in :mod:`audiocraft_mmd.losses.estimators.blocked` only needs from a kernel
its profile ``k(s)`` and the derivative ``dk/ds``; the chain rule through ``s`` is the same
for all kernels of a family and lives in the MMD code.

Factorization over codebooks (`factorizes`, for the shuffle-free estimators of issue #29, `estimators.closed_form` and
`estimators.features`, which refuse the other kernels with the reason below): a row
is K codebooks concatenated, x = (x^1, ..., x^K). The multi-scale Gaussian is, for each radius, a product
over codebooks, exp(-sum_k ||x^k - y^k||^2 / 2 sigma^2) = prod_k exp(-||x^k - y^k||^2 / 2 sigma^2), so its
mean under the product of the marginals is a product of per-codebook means. The squared inverse is not
(1 / (1 + sum_k s_k) is no product of functions of each s_k). The linear kernel is a sum over codebooks;
its MMD between the joint and the product of the marginals compares mean embeddings, which are the mean
rows, equal for both: it is 0 whatever the dependence, no independence signal to compute. The quadratic
kernel (sum_k x^k . y^k)^2 = sum_{k, l} (x^k . y^k)(x^l . y^l) is a sum of two-codebook products: its
closed form would compare only the codebooks' pairwise second moments (cross-covariances); not built.
"""

import math
import typing as tp

import torch
from torch import nn


class Kernel(nn.Module):
    """Base class: a kernel k(x, y) = profile(s(x, y)), without parameters.

    Subclasses set ``radial`` and implement :meth:`profile` and either ``_derivative`` (dk/ds) or a
    faster in-place :meth:`evaluate_tile`.
    """
    radial: bool = True
    # Whether the kernel is a product of per-codebook kernels (see the module docstring), and if not why.
    factorizes: bool = False
    why_not_factorized: str = ''
    # Constructor arguments read from the config keys of the same name (`MMDLoss.from_config`).
    config_keys: tp.Tuple[str, ...] = ()

    def statistic(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pairwise statistic, squared distance (radial) or inner product, with one matmul.

        Args:
            x: [n, F] rows.
            y: [m, F] rows.
        Returns:
            [n, m] tensor. The squared distance is clamped at 0: the matmul form can go
            slightly negative through cancellation for (near) identical rows.
        """
        if not self.radial:
            return x @ y.t()
        sq_x = x.pow(2).sum(-1)
        sq_y = y.pow(2).sum(-1)
        dist = torch.addmm(sq_y[None, :], x, y.t(), beta=1., alpha=-2.)
        return (dist + sq_x[:, None]).clamp_min(0.)

    def profile(self, s: torch.Tensor) -> torch.Tensor:
        """Kernel value as a function of the statistic, out of place (autograd friendly)."""
        raise NotImplementedError

    def evaluate_tile(self, s: torch.Tensor, derivative: bool,
                      skip_diagonal: bool = False) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        """Sum of the kernel values of a tile and, if asked, the tile of dk/ds; may overwrite ``s``.

        Only the sum of the values is needed by the MMD, which saves writing a value tile.
        Runs without autograd.

        Args:
            s: [n, m] statistic tile, owned by the caller and not needed afterwards.
            derivative: whether to compute dk/ds.
            skip_diagonal: leave the entries (i, i) out of the sum (the derivative tile keeps them).
        Returns:
            (float64 scalar sum, [n, m] derivative or None).
        """
        value = self.profile(s)
        return _tile_sum(value, skip_diagonal), self._derivative(s) if derivative else None

    def _derivative(self, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Dense kernel block.

        Args:
            x: [n, F] rows.
            y: [m, F] rows.
        Returns:
            [n, m] tensor with entries k(x_i, y_j).
        """
        return self.profile(self.statistic(x, y))


def _tile_sum(value: torch.Tensor, skip_diagonal: bool) -> torch.Tensor:
    """float64 sum of a tile, without the diagonal if asked.

    The tile is summed in its own dtype (torch sums by cascades: relative error ~ eps log(size),
    no float64 copy of the tile); the caller accumulates these per-tile sums in float64.
    """
    total = value.sum().double()
    # Removes exactly the diagonal values that were added (up to the sum's rounding).
    return total - value.diagonal().sum().double() if skip_diagonal else total


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Kernel {name} must be a positive finite number, got {value!r}.")
    return value


class MultiScaleGaussian(Kernel):
    """k(x, y) = sum_i exp(-||x - y||^2 / (2 sigma_i^2)), sigmas are standard deviations.

    Args:
        sigmas: the radii sigma_i (paper, section 4.1: 0.1, 1, 5, 10, 20, 50).
    """
    radial = True
    factorizes = True
    config_keys = ('sigmas',)

    def __init__(self, sigmas: tp.Sequence[float] = (0.1, 1., 5., 10., 20., 50.)):
        super().__init__()
        if isinstance(sigmas, (int, float)):
            sigmas = (sigmas,)
        if len(sigmas) == 0:
            raise ValueError("Kernel sigmas must hold at least one value, got an empty list.")
        self.sigmas = tuple(_check_positive('sigma', s) for s in sigmas)
        # exp(-s * rate): rate = 1 / (2 sigma^2); the derivative of that term is -rate * term.
        self._rates = tuple(0.5 / s ** 2 for s in self.sigmas)

    def profile(self, s: torch.Tensor) -> torch.Tensor:
        return sum(torch.exp(-rate * s) for rate in self._rates)  # type: ignore[return-value]

    def evaluate_tile(self, s: torch.Tensor, derivative: bool,
                      skip_diagonal: bool = False) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        total = torch.zeros((), dtype=torch.float64, device=s.device)
        deriv = torch.empty_like(s) if derivative else None
        term = torch.empty_like(s)
        # exp(-x) is exactly 0 in this dtype beyond `zero`, a subnormal beyond `subnormal`.
        zero, subnormal = (110., 87.) if s.dtype != torch.float64 else (750., 708.)
        # On CPU, subnormal results are several times slower to produce and to add: knowing the
        # tile's range (one read pass, no device sync on CPU) lets us skip radii whose terms are
        # all exactly 0 and floor the exponent only where subnormals can appear. GPUs handle
        # subnormals at full speed, there every radius is evaluated as is.
        lo, hi = (float(v) for v in s.aminmax()) if s.device.type == 'cpu' else (0., 0.)
        first = True
        for rate in self._rates:
            if rate * lo > zero:
                continue
            torch.mul(s, -rate, out=term)
            if rate * hi > subnormal:
                term.clamp_min_(-subnormal)  # changes each term by less than exp(-87) ~ 2e-38
            term.exp_()  # in place, one scratch buffer: this is the hot loop of the loss
            total += _tile_sum(term, skip_diagonal)
            if deriv is not None:
                if first:
                    torch.mul(term, -rate, out=deriv)
                else:
                    deriv.add_(term, alpha=-rate)
            first = False
        if deriv is not None and first:
            deriv.zero_()
        return total, deriv

    def extra_repr(self) -> str:
        return f"sigmas={self.sigmas}"


class SquaredInverse(Kernel):
    """k(x, y) = (1 + ||x - y||^2 / sigma^2)^-1.

    Args:
        sigma: scale (paper, Table 3: 12).
    """
    radial = True
    why_not_factorized = "the squared inverse 1 / (1 + sum_k s_k / sigma^2) is no product over codebooks"
    config_keys = ('sigma',)

    def __init__(self, sigma: float = 12.):
        super().__init__()
        self.sigma = _check_positive('sigma', sigma)
        self._inv_sq = 1. / self.sigma ** 2

    def profile(self, s: torch.Tensor) -> torch.Tensor:
        return 1. / (1. + s * self._inv_sq)

    def evaluate_tile(self, s: torch.Tensor, derivative: bool,
                      skip_diagonal: bool = False) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        value = s.mul_(self._inv_sq).add_(1.).reciprocal_()
        total = _tile_sum(value, skip_diagonal)
        # d/ds (1 + s / sigma^2)^-1 = -k^2 / sigma^2
        return total, value.pow_(2).mul_(-self._inv_sq) if derivative else None

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class Linear(Kernel):
    """k(x, y) = x^T y."""
    radial = False
    why_not_factorized = ("the linear kernel's MMD between the joint and the product of the marginals compares "
                          "their mean rows, which are equal: it is 0 whatever the dependence")

    def profile(self, s: torch.Tensor) -> torch.Tensor:
        return s

    def _derivative(self, s: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(s)


class Quadratic(Kernel):
    """k(x, y) = (x^T y)^2."""
    radial = False
    why_not_factorized = ("the quadratic kernel is a sum over codebook pairs of two-codebook products; its closed "
                          "form (pairwise cross-covariances only) is not built")

    def profile(self, s: torch.Tensor) -> torch.Tensor:
        return s.pow(2)

    def _derivative(self, s: torch.Tensor) -> torch.Tensor:
        return 2. * s


KERNELS: tp.Dict[str, tp.Type[Kernel]] = {
    'gaussian': MultiScaleGaussian,
    'squared_inverse': SquaredInverse,
    'linear': Linear,
    'quadratic': Quadratic,
}


def build_kernel(name: str, **kwargs: tp.Any) -> Kernel:
    """Kernel from its name: 'gaussian' (sigmas=...), 'squared_inverse' (sigma=...), 'linear', 'quadratic'."""
    if name not in KERNELS:
        raise ValueError(f"Unknown kernel {name!r}; valid names are: {', '.join(sorted(KERNELS))}.")
    return KERNELS[name](**kwargs)
