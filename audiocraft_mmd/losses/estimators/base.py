# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""What every MMD estimator is: an `MMDEstimator` with capability attributes, and the rules derived from them.

An estimator computes MMD^2 between the joint rows and the product of their marginals from rows that `MMDLoss`
has aligned, scoped, normalized and subsampled. What it can be combined with is declared, never coded at the
call sites: `MMDLoss` (codes, ranks), `MMDBank` (the bank) and the `mmd` block's parser (`mmd_config`) read the
attributes below through :func:`bank_conflicts` and :func:`scope_conflicts`, so a new estimator gets its checks
by declaring them.
"""
import typing as tp

import torch

from ..kernels import Kernel
from ..scope import TileShare

Reduce = tp.Callable[[torch.Tensor], torch.Tensor]
CROSSINGS = ('gather', 'reduce')


class OptionError(ValueError):
    """An option the MMD loss cannot take; ``key`` is the `mmd` config key it comes from (the config's parser
    turns it into a `ConfigError` naming `mmd.<key>`)."""

    def __init__(self, key: str, value: tp.Any, message: str):
        super().__init__(message)
        self.key, self.value = key, value


def check_factorizes(kernel: Kernel) -> None:
    """Raises an `OptionError` naming the kernel if it is no product over codebooks (no closed form)."""
    if not kernel.factorizes or not hasattr(kernel, 'sigmas'):
        why = kernel.why_not_factorized or 'it is not a product of per-codebook kernels'
        raise OptionError('kernel', type(kernel).__name__,
                          f"The closed-form MMD needs a kernel that factorizes over codebooks; kernel "
                          f"{type(kernel).__name__} does not: {why}.")


class MMDEstimator:
    """Base class: MMD^2 between joint rows and the product of their marginals (see `registry.ESTIMATORS`).

    Capabilities (class attributes):
        marginals, shuffle: the values of `mmd.marginals` and `mmd.shuffle` that select it.
        config_keys: constructor arguments read from the `mmd` keys of the same name.
        needs_codes: takes the rows' strata of the past (:meth:`strata`, from the codes).
        supports_bank: composes with the memory bank (`mmd.estimator: bank`, `MMDBank`).
        bank_exclude_shared: ... with `exclude_shared` too.
        crosses_ranks: under `mmd.scope: global`, 'gather' (the rows are gathered, tiles shared) or 'reduce'
            (each rank keeps its rows and its sums are all-reduced: the row statistics of a normalization would
            then be per rank, so it needs `normalize: none`).
        needs_factorizing_kernel: a kernel that is a product over codebooks (`Kernel.factorizes`).

    Args:
        kernel: the loss's kernel.
        block_size: tile side of the blocked sums.
        exclude_shared: leave out the cross pairs that share a code (or its counterpart, see each estimator).
    """
    marginals: str = ''
    shuffle: str = 'global'
    config_keys: tp.Tuple[str, ...] = ()
    needs_codes: bool = False
    supports_bank: bool = False
    bank_exclude_shared: bool = False
    crosses_ranks: str = 'gather'
    needs_factorizing_kernel: bool = False

    def __init__(self, kernel: Kernel, block_size: int = 1024, exclude_shared: bool = False):
        if self.needs_factorizing_kernel:
            check_factorizes(kernel)
        self.kernel, self.block_size, self.exclude_shared = kernel, block_size, exclude_shared

    def strata(self, codes: torch.Tensor, delay: bool) -> tp.Optional[torch.Tensor]:
        """Strata [n] of the aligned rows from codes [B, K, T] (estimators that `needs_codes`)."""
        return None

    def __call__(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator],
                 share: tp.Optional[TileShare] = None, reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
        """The estimate from rows [n, K, D] (and their strata [n] if `needs_codes`), as a scalar.

        Args:
            generator: the random draws (shuffles, frequencies).
            share: this rank's share of the tiles (`scope.TileShare`, gathered rows), or None; may be ignored.
            reduce: all-reduce sum of the estimator's sums (`crosses_ranks == 'reduce'`, global scope), or None.
        """
        raise NotImplementedError

    def num_rows(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor]) -> int:
        """How many of the rows the estimate compares."""
        return rows.shape[0]

    def against_bank(self, rows: torch.Tensor, num_current: int, strata: tp.Optional[torch.Tensor],
                     generator: tp.Optional[torch.Generator], with_value: bool, reduce: tp.Optional[Reduce]
                     ) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        """(loss, value or None) of one bank step over rows [n, K, D]: the first `num_current` with gradient, the
        bank's detached. By default the whole estimate, autograd giving the current rows their gradient."""
        with torch.autocast(device_type=rows.device.type, enabled=False):
            loss = self(rows, strata, generator, None, reduce)
        return loss, loss.detach() if with_value else None


def bank_conflicts(estimator: tp.Type[MMDEstimator], normalize: str, max_rows: tp.Optional[int],
                   exclude_shared: bool) -> tp.Dict[str, tp.Any]:
    """Options that the memory bank cannot take with this estimator, as {`mmd` key: value} (empty if none).

    The bank rows must be constants: no row statistics (`normalize`), no subsample (`max_rows`)."""
    bad: tp.Dict[str, tp.Any] = {}
    if normalize != 'none':
        bad['normalize'] = normalize
    if max_rows is not None:
        bad['max_rows'] = max_rows
    if exclude_shared and not estimator.bank_exclude_shared:
        bad['exclude_shared'] = exclude_shared
    if not estimator.supports_bank:
        bad['marginals'] = estimator.marginals
    return bad


def bank_requirements(estimator: tp.Type[MMDEstimator]) -> str:
    """What the bank needs of the options, said for `estimator` (error messages)."""
    if not estimator.supports_bank:
        return (f"the estimator of marginals={estimator.marginals!r}, shuffle={estimator.shuffle!r} does not "
                "compose with the bank")
    shared = '' if estimator.bank_exclude_shared else ', exclude_shared=False'
    return (f"the bank rows must be constants: normalize='none', max_rows=None{shared} with marginals="
            f"{estimator.marginals!r}, shuffle={estimator.shuffle!r}")


def scope_conflicts(estimator: tp.Type[MMDEstimator], normalize: str) -> tp.Dict[str, tp.Any]:
    """Options that `mmd.scope: global` cannot take with this estimator, as {`mmd` key: value}: an estimator that
    crosses ranks by reducing its sums never sees the other ranks' rows, so no row statistics."""
    return {'normalize': normalize} if estimator.crosses_ranks == 'reduce' and normalize != 'none' else {}
