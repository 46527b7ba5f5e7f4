# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""The conditional shuffle's estimator (`mmd.shuffle: conditional`, `Conditional`) and its strata of the past.

A delay-pattern LM is exact when the K codes of one step are independent *given the past tokens*
(issue #19). The conditional shuffle permutes each codebook's rows only among rows that share a
stratum of the past, so that the shuffled rows sample sum_s p(s) prod_k P(Z_k | s): the MMD is then 0
when the codebooks are independent given the stratum, whatever their marginal dependence.

Stratum of a row: the code of the first codebook in the previous aligned frame, i.e. Z_0^{t-1} for the
row whose first codebook is Z_0^t (same t in the delay and the parallel alignment). It is a token the
LM has already emitted when it predicts the row, the one with the most information about the next
frame (RVQ stage 0 carries most of the signal), and it is discrete, so equal pasts are exactly equal
(no clustering to fit and no bandwidth to choose); at most `cardinality` strata.

Rows without an observed past (`NO_PAST`): in the parallel alignment the first frame of each item; with
the delay alignment Z_0^{t-1} of aligned frame 0 is raw frame K - 2, inside the segment, so every row has
one. Such rows, and rows of strata too small to shuffle (fewer than K + 1 rows, see below), are left out.

The estimate (`stratified_mmd2`) is the average over strata, weighted by their rows, of eq. (7) between the
stratum's joint rows and its shuffled rows, with the pairs that share a cell left out of the cross sum. Why
not eq. (7) over all rows at once (measured, issue #19):
- pooled, the cross sum holds the n pairs (x_j, y_j) of the same stratum, which the within sums (i != j)
  hold in a smaller proportion: a bias of about -2 Delta / n, Delta the excess kernel value of two rows with
  the same past. It grows with how much the past says, not with the dependence the loss is after: on codes
  independent given the past, -0.00122 (sd 0.00005 over 6 data sets); in training at CPU scale, -5e-4 to
  -2e-3 against +1e-4 to +3e-4 for the global MMD, so the gradient was mostly the bias's;
- a stratum holds few rows (tens), so the cells a shuffled row shares with joint rows (eq. (7)'s -2 K
  Delta' / m bias) matter far more than over a whole macro-batch: those pairs are always left out here;
- comparing two disjoint halves of the clips instead (split sample) removes both, but then the estimate
  measures how much two sets of 16 clips differ: it logged +0.006 to +0.015 in training, 50x the global
  MMD, a gradient towards codes that say less about the clip.
Within a stratum, given the strata, rows are independent; when the codebooks are independent given the
stratum, every within pair, and every cross pair that shares no cell, then consists of independent cells
of the same laws: the estimate is exactly 0 in expectation. A stratum needs K + 1 rows so that every
shuffled row has a cross pair that shares no cell (it shares cells with at most K joint rows).
"""
import typing as tp

import torch

from ...delay_pattern import delay_align
from ..kernels import Kernel
from ..scope import TileShare
from .base import MMDEstimator, Reduce
from .blocked import mmd2_unbiased, shared_pairs
from .shuffle import shuffle_codebooks, take_codebooks

NO_PAST = -1


def past_strata(codes: torch.Tensor, delay: bool) -> torch.Tensor:
    """Stratum of each aligned row: the first codebook's code in the previous frame.

    Rows are ordered as `MMDLoss.aligned_rows` orders them (batch-major: row b * T' + j).

    Args:
        codes: [B, K, T] integer codes of the streams the rows come from.
        delay: the rows are delay-aligned (see `delay_pattern.delay_align`), else parallel.
    Returns:
        [B * T'] long strata, `NO_PAST` for rows without a previous frame.
    """
    if codes.dim() != 3:
        raise ValueError(f"past_strata expects codes of shape [B, K, T], got {tuple(codes.shape)}.")
    previous = torch.full_like(codes, NO_PAST, dtype=torch.long)
    # every codebook slot holds the previous code of codebook 0, so that the alignment's own
    # shift of codebook 0 (not a second copy of its formula) puts it on the right row
    previous[..., 1:] = codes[:, :1, :-1].long()
    aligned = delay_align(previous) if delay else previous
    return aligned[:, 0].reshape(-1)


def shuffleable(strata: torch.Tensor, min_rows: int = 2) -> torch.Tensor:
    """Rows that the conditional shuffle may use: with a past, in a stratum of at least `min_rows` such rows.

    Args:
        strata: [n] long strata (`NO_PAST` allowed).
        min_rows: smallest stratum kept (`MMDLoss` uses K + 1, see the module docstring).
    Returns:
        [n] bool mask.
    """
    has_past = strata != NO_PAST
    _, inverse, counts = torch.unique(strata, return_inverse=True, return_counts=True)
    return has_past & (counts[inverse] >= min_rows)


def stratified_index(strata: torch.Tensor, num_codebooks: int,
                     generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """One permutation per codebook, each moving rows only within their stratum, uniformly at random.

    Sorting the rows by (stratum, uniform key) lists every stratum's rows as one block in a random
    order; the stable sort by stratum alone lists the same blocks in row order. Matching the two lists
    position by position gives a uniform permutation within each block. A stratum of one row maps it to
    itself: callers keep only `shuffleable` rows.

    Args:
        strata: [n] long strata.
        num_codebooks: K.
        generator: random generator (default: torch's global CPU generator); draws one [n, K] float64
            uniform tensor.
    Returns:
        [n, K] long tensor whose column k is a permutation with strata[index[:, k]] == strata.
    """
    n = strata.shape[0]
    rng_device = generator.device if generator is not None else torch.device('cpu')
    keys = torch.rand(n, num_codebooks, generator=generator, dtype=torch.float64, device=rng_device)
    dense = torch.unique(strata, return_inverse=True)[1].to(rng_device)  # 0 .. S-1: exact in float64
    random_order = (dense[:, None].double() + keys).argsort(dim=0)
    row_order = dense.argsort(stable=True)
    index = torch.empty_like(random_order)
    index[row_order] = random_order
    return index.to(strata.device)


def stratified_mmd2(joint: torch.Tensor, shuffled: torch.Tensor, index: torch.Tensor, strata: torch.Tensor,
                    kernel: Kernel, block_size: int) -> torch.Tensor:
    """sum_s (n_s / n) MMD^2_s: eq. (7) within each stratum, cross pairs that share a cell left out.

    Args:
        joint: [n, K, D] joint rows, each stratum of at least K + 1 rows.
        shuffled: [n, K, D] rows shuffled within strata (`stratified_index`): row j's cells are in stratum
            strata[j].
        index: [n, K] the permutations (codebook k of shuffled row j is joint row index[j, k]'s).
        strata: [n] stratum of each row.
    Returns:
        Scalar, 0 (with a zero gradient) when n == 0.
    """
    n = joint.shape[0]
    total = joint.sum() * 0. + shuffled.sum() * 0.
    local = torch.empty(n, dtype=torch.long, device=joint.device)  # position of a row within its stratum
    for stratum in torch.unique(strata):
        members = (strata == stratum).nonzero().squeeze(1)
        local[members] = torch.arange(members.shape[0], device=joint.device)
        exclude = shared_pairs(local[index[members]])
        value = mmd2_unbiased(joint[members].flatten(1), shuffled[members].flatten(1), kernel, block_size, exclude)
        total = total + value * (members.shape[0] / n)
    return total


def shuffle_rows(rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator]
                 ) -> tp.Tuple[torch.Tensor, torch.Tensor, torch.Tensor, tp.Optional[torch.Tensor]]:
    """The joint rows and their shuffled counterparts, globally (Algorithm 1) or within strata of the past.

    Args:
        rows: [n, K, D] rows.
        strata: None for the global shuffle (:func:`.shuffle.shuffle_codebooks`, the same draws), or [n] long
            strata: only the rows `shuffleable` in strata of K + 1 rows are kept, each codebook permuted within
            strata.
        generator: random generator.
    Returns:
        joint [n', K, D], shuffled [n', K, D], index [n', K] (row j of codebook k came from joint row
        index[j, k]) and the [n] bool mask of kept rows (None for the global shuffle, n' = n).
    """
    if strata is None:
        shuffled, index = shuffle_codebooks(rows, generator, return_index=True)
        return rows, shuffled, index, None
    if strata.shape != rows.shape[:1]:
        raise ValueError(f"strata of shape {tuple(strata.shape)} do not match rows of shape {tuple(rows.shape)}.")
    keep = shuffleable(strata, min_rows=rows.shape[1] + 1)
    rows = rows[keep]
    index = stratified_index(strata[keep], rows.shape[1], generator)
    return rows, take_codebooks(rows, index), index, keep


class Conditional(MMDEstimator):
    """Eq. (7) within strata of the past, averaged over strata (see the module docstring). Cross pairs that share
    a cell are always left out, so `exclude_shared` changes nothing; the bank gets the whole estimate (its
    sum_s n_s^2 pairs cost little)."""
    marginals = 'shuffle'
    shuffle = 'conditional'
    needs_codes = True
    supports_bank = True

    def strata(self, codes: torch.Tensor, delay: bool) -> torch.Tensor:
        return past_strata(codes, delay)

    def __call__(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator],
                 share: tp.Optional[TileShare] = None, reduce: tp.Optional[Reduce] = None) -> torch.Tensor:
        assert strata is not None, "the conditional shuffle needs the rows' strata"
        rows, shuffled, index, keep = shuffle_rows(rows, strata, generator)
        return stratified_mmd2(rows, shuffled, index, strata[keep], self.kernel, self.block_size)

    def num_rows(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor]) -> int:
        assert strata is not None, "the conditional shuffle needs the rows' strata"
        return int(shuffleable(strata, min_rows=rows.shape[1] + 1).sum())
