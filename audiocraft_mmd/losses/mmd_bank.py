# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Memory-bank estimator of the MMD independence loss (`mmd.estimator: bank`).

The exact estimator (Algorithm 1, `CompressionMMDSolver.macro_batch_mmd`) re-encodes a macro-batch
of `num_batches` batches every `num_batches` steps. The bank instead reuses the rows of each
training step's own forward: step t compares its m current rows (with gradient) and the detached
rows of the previous `num_batches - 1` steps (the bank), n rows in all, with the same eq. (7) as
:class:`MMDLoss`, and only the terms that involve a current row are computed with gradient.
"""
import collections
import typing as tp

import torch

from .estimators import bank_conflicts
from .estimators.base import Reduce, bank_requirements
from .mmd import MMDLoss


class BankResult(tp.NamedTuple):
    """What one bank step gives.

    loss: scalar with gradient w.r.t. the current rows: the part of eq. (7) made of the terms that
        involve a current row. Its gradient equals the gradient of the full estimate; its value is
        not an MMD estimate on its own.
    value: the full eq. (7) estimate over the n rows (no gradient), when asked, else None.
    num_rows: n, current rows plus bank rows.
    """
    loss: torch.Tensor
    value: tp.Optional[torch.Tensor]
    num_rows: int


class MMDBank:
    """Memory-bank MMD: the current batch's rows against the detached rows of the previous batches.

    Each call: the m current rows (with gradient, taken from the training forward itself) are put
    first, followed by the bank's rows (oldest batch first), n rows in all. As in the exact estimator,
    each codebook is shuffled by its own permutation drawn over all n rows from `generator`, so that
    the shuffled rows mix current and bank codes exactly as a macro-batch of these n rows would. A
    shuffled row carries gradient iff at least one of its codebooks came from a current row (about
    1 - (1 - m / n)^K of them). Of eq. (7), only the terms that involve a gradient row (joint or
    shuffled) are computed: with b = n - m bank rows and g gradient shuffled rows, O((m + g) n) kernel
    evaluations instead of O(n^2); the constant terms (bank x bank) are skipped, except when the full
    value is asked for (logging). The loss's gradient w.r.t. the current rows equals that of eq. (7)
    over the n rows; the bank rows get none (they are constants).

    Bias: the bank rows are the streams of batches t-1 ... t-(num_batches-1), produced by the encoder
    (and codebooks) as they were at those steps, i.e. up to num_batches - 1 optimizer updates old
    (staleness bounded by the bank's capacity; the bank is cleared at the start of every stage, so it
    never holds rows of another epoch or stage). The estimate therefore compares the current encoder's
    codes with a mixture of slightly older encoders' codes: it is unbiased for the MMD of that mixture,
    not of the current encoder's distribution; the difference vanishes as the updates over
    num_batches steps get small (small learning rate, late training). During the first num_batches - 1
    steps of a stage the bank holds fewer batches (n smaller, the estimate noisier).

    Weight: the exact estimator adds, every num_batches steps, the gradient w.r.t. all the macro-batch
    rows; the bank adds, every step, the gradient w.r.t. that step's rows (about 1 / num_batches of the
    total). Summed over num_batches steps they match in expectation, so the same `losses.mmd` gives
    about the same push per macro-batch, spread over its steps.

    The estimator decides what a step computes (`MMDEstimator.against_bank`); the bank composes with every
    estimator that declares `supports_bank`. Shuffle (`estimators.shuffle`): as above.

    Conditional shuffle (`loss.shuffle == 'conditional'`): each call also takes the current rows' strata,
    which enter the bank with them (strata are code indices, comparable across steps even though the
    codebooks move); the rows kept and the within-strata permutations are drawn over all n rows as
    :class:`MMDLoss` draws them (`conditional.shuffle_rows`), current rows still first, and the estimate is
    the stratified one (`conditional.stratified_mmd2`), computed whole: its sum_s n_s^2 pairs cost little, and autograd
    gives the current rows their gradient (bank rows are detached). Current rows left out (no past, or in a
    stratum too small) get no gradient.

    Random features (`loss.marginals == 'features'`, `estimators.features`): the estimate is taken whole over the
    n rows with fresh frequencies, O(n M F) per step; autograd gives the current rows their gradient (the bank rows
    are detached), and the value is the estimate itself. Under global scope each rank keeps its own rows and
    bank, and the features' sums are all-reduced (``reduce``): no row crosses the ranks.

    Supported (`estimators.bank_conflicts`, from the estimator's attributes): `normalize='none'`, no `max_rows`
    (with row statistics or a subsample the bank rows would not be constants); `exclude_shared` where the
    estimator says `bank_exclude_shared` (the features; the shuffle's bank draws its pairs over all rows); not the
    closed form (O(n^2) over every bank row, each step: it does not declare `supports_bank`).

    Args:
        loss: the :class:`MMDLoss` whose kernel, delay and block size are used.
        num_batches: macro-batch size; the bank holds num_batches - 1 batches.
    """
    def __init__(self, loss: MMDLoss, num_batches: int):
        self.validate(loss)
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}.")
        self.loss = loss
        self.num_batches = num_batches
        self._bank: tp.Deque[torch.Tensor] = collections.deque(maxlen=num_batches - 1)
        self._strata: tp.Deque[torch.Tensor] = collections.deque(maxlen=num_batches - 1)  # conditional only

    @staticmethod
    def unsupported(loss: MMDLoss) -> tp.Dict[str, tp.Any]:
        """Options of `loss` that the bank does not support, as {config key: value} (empty if none)."""
        return bank_conflicts(type(loss.estimator), loss.normalize, loss.max_rows, loss.exclude_shared)

    @classmethod
    def validate(cls, loss: MMDLoss) -> None:
        bad = cls.unsupported(loss)
        if bad:
            raise ValueError(f"The memory-bank estimator does not support {bad}: "
                             f"{bank_requirements(type(loss.estimator))}.")

    def clear(self) -> None:
        """Empty the bank (at every stage start)."""
        self._bank.clear()
        self._strata.clear()

    def __len__(self) -> int:
        """Number of batches held."""
        return len(self._bank)

    def __call__(self, rows: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
                 with_value: bool = False, strata: tp.Optional[torch.Tensor] = None,
                 reduce: tp.Optional[Reduce] = None) -> BankResult:
        """One step: the estimate for `rows` against the bank, then `rows` (detached) enter the bank.

        Args:
            rows: [m, K, D] current rows (:meth:`MMDLoss.aligned_rows`), with gradient.
            generator: random generator of the K permutations (drawn over all n rows).
            with_value: also compute the constant terms, to return the full eq. (7) value.
            strata: [m] strata of the rows (:meth:`MMDLoss.aligned_strata`), for the conditional shuffle only.
            reduce: autograd-aware all-reduce sum (global scope of the features, :meth:`MMDLoss.scope`), or None.
        """
        estimator = self.loss.estimator
        if rows.dim() != 3:
            raise ValueError(f"MMDBank expects rows of shape [m, K, D], got {tuple(rows.shape)}.")
        if reduce is not None and estimator.crosses_ranks != 'reduce':
            raise ValueError(f"reduce (all-reduced sums) is for estimators that cross ranks by reduce "
                             f"(marginals={self.loss.marginals!r} gathers its rows).")
        if (strata is None) == estimator.needs_codes:
            raise ValueError(f"strata must be given exactly when the estimator needs codes "
                             f"(shuffle={self.loss.shuffle!r}, strata given: {strata is not None}).")
        for old in self._bank:
            if old.shape[1:] != rows.shape[1:]:
                raise ValueError(f"rows of shape {tuple(rows.shape)} do not match the bank's "
                                 f"{tuple(old.shape)}: clear() the bank when the codebooks change.")
        if rows.dtype not in (torch.float32, torch.float64):
            rows = rows.float()
        everything = torch.cat([rows, *[old.to(rows) for old in self._bank]], dim=0)
        all_strata = None if strata is None else torch.cat([strata, *self._strata])
        if everything.shape[0] < 2:
            raise ValueError(f"MMDBank needs at least 2 rows in all, got {everything.shape[0]}.")
        self._bank.append(rows.detach())
        if strata is not None:
            self._strata.append(strata)
        loss, value = estimator.against_bank(everything, rows.shape[0], all_strata, generator, with_value, reduce)
        return BankResult(loss, value, estimator.num_rows(everything, all_strata))
