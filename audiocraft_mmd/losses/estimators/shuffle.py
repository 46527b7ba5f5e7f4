# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Algorithm 1's estimator (`mmd.marginals: shuffle`, `mmd.shuffle: global`): eq. (7) between the joint rows and
the rows with each codebook permuted on its own, which samples the product of the marginals.

Shared pairs (`exclude_shared`, see `MMDLoss`): the cross pairs (x_i, y_j) where shuffled row j took a codebook
from joint row i are left out of the cross average (:func:`shared_pairs`).

Against the bank (:meth:`Shuffle.against_bank`): only the terms of eq. (7) that involve a row with gradient are
computed (a current joint row, or a shuffled row that took at least one code from one), O((m + g) n) kernel
evaluations instead of O(n^2); the bank x bank terms only when the value is asked for (logging).
"""
import typing as tp

import torch

from ..kernels import Kernel
from ..scope import TileShare
from .base import MMDEstimator, Reduce
from .blocked import cross_sum, gradient_in_forward, mmd2_unbiased, shared_pairs, within_sum


def randperm(n: int, generator: tp.Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """A permutation of n drawn on the generator's device (CPU by default), returned on `device`."""
    rng_device = generator.device if generator is not None else torch.device('cpu')
    return torch.randperm(n, generator=generator, device=rng_device).to(device)


def take_codebooks(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Row ``j`` of the output takes codebook k from row ``index[j, k]``: z [n, K, D], index [n, K] -> [n, K, D]."""
    return z[index, torch.arange(z.shape[1], device=z.device)[None, :]]


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
    index = torch.stack([randperm(n, generator, z.device) for _ in range(K)], dim=1)  # [n, K]
    shuffled = take_codebooks(z, index)
    return (shuffled, index) if return_index else shuffled


class Shuffle(MMDEstimator):
    """Eq. (7) between the joint rows and one global shuffle of them (paper, Algorithm 1)."""
    marginals = 'shuffle'
    shuffle = 'global'
    supports_bank = True

    def __call__(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator],
                 share: tp.Optional[TileShare] = None, reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
        shuffled, index = shuffle_codebooks(rows, generator, return_index=True)
        n = rows.shape[0]
        exclude = shared_pairs(index) if self.exclude_shared else None
        return mmd2_unbiased(rows.reshape(n, -1), shuffled.reshape(n, -1), self.kernel, self.block_size, exclude,
                             share)

    def against_bank(self, rows: torch.Tensor, num_current: int, strata: tp.Optional[torch.Tensor],
                     generator: tp.Optional[torch.Generator], with_value: bool, reduce: tp.Optional[Reduce]
                     ) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        """The terms with gradient only (see the module docstring); the value adds the constant terms."""
        shuffled, index = shuffle_codebooks(rows, generator, return_index=True)
        n, m = rows.shape[0], num_current
        touched = (index < m).any(dim=1)  # [n]: shuffled rows holding at least one current code
        x, y = rows.reshape(n, -1), shuffled.reshape(n, -1)
        xg, xc = x[:m], x[m:].detach()
        yg, yc = y[touched], y[~touched].detach()
        within, cross = 1. / (n * (n - 1)), -2. / n ** 2
        kernel, block_size = self.kernel, self.block_size
        with torch.autocast(device_type=x.device.type, enabled=False):
            def compute(xg: torch.Tensor, yg: torch.Tensor, with_grad: bool):
                grads = (torch.zeros_like(xg), torch.zeros_like(yg)) if with_grad else (None, None)
                return _grad_terms(kernel, xg, yg, xc, yc, block_size, within, cross, *grads), grads

            loss = gradient_in_forward(compute, xg, yg)
            value = None
            if with_value:
                with torch.no_grad():
                    value = (loss.detach() + _constant_terms(kernel, xc, yc, block_size, within, cross)).to(x.dtype)
        return loss.to(x.dtype), value


def _grad_terms(kernel: Kernel, xg: torch.Tensor, yg: torch.Tensor, xc: torch.Tensor, yc: torch.Tensor,
                block_size: int, within: float, cross: float,
                grad_x: tp.Optional[torch.Tensor], grad_y: tp.Optional[torch.Tensor]) -> torch.Tensor:
    """The terms of eq. (7) with at least one row of xg or yg, and (if given) their gradients.

    Within sums over ordered pairs i != j: a pair (gradient row, constant row) appears twice.
    Cross sum: (xg, yg), (xg, yc) and (xc, yg) pairs; the (xc, yc) pairs are constants.
    """
    value = within_sum(kernel, xg, within, block_size, grad_x)
    value = value + cross_sum(kernel, xg, xc, 2. * within, block_size, grad_x, None)
    value = value + within_sum(kernel, yg, within, block_size, grad_y)
    value = value + cross_sum(kernel, yg, yc, 2. * within, block_size, grad_y, None)
    value = value + cross_sum(kernel, xg, yg, cross, block_size, grad_x, grad_y)
    value = value + cross_sum(kernel, xg, yc, cross, block_size, grad_x, None)
    return value + cross_sum(kernel, xc, yg, cross, block_size, None, grad_y)


def _constant_terms(kernel: Kernel, xc: torch.Tensor, yc: torch.Tensor, block_size: int, within: float,
                    cross: float) -> torch.Tensor:
    """The terms of eq. (7) between constant rows only (bank joint rows, shuffled rows without a current code)."""
    value = within_sum(kernel, xc, within, block_size, None) + within_sum(kernel, yc, within, block_size, None)
    return value + cross_sum(kernel, xc, yc, cross, block_size, None, None)
