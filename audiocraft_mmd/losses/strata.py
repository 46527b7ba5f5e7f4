# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Strata of the past for the conditional shuffle (`mmd.shuffle: conditional`).

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
one. Such rows, and rows whose stratum holds a single row of their half (its only "shuffle" would be the
row itself, a joint sample passed off as a factorized one), are left out.

Split sample. Shuffling the joint rows themselves within strata (an in-sample shuffle) biases eq. (7): the
shuffled row y_j shares its stratum with the joint row x_j (and its cells with a few joint rows), so the
cross sum holds n pairs that are more alike than the within pairs; the bias is -2 Delta / n, Delta the
excess kernel value of two rows with the same past, and it grows with the strength of the past, not with
the dependence the loss is after. Measured at CPU scale (issue #19) it was -5e-4 to -2e-3 against a global
MMD of +1e-4 to +3e-4: the gradient was mostly the bias's. So the items (clips) of a batch are split at
random into two halves (`item_halves`): the joint rows come from one half, the shuffled rows are the
other half's rows shuffled within strata. Given the strata, a within-strata column shuffle of iid rows
whose codebooks are independent given the stratum has the law of the rows themselves, and the two halves
are independent: eq. (7) between the halves is then 0 in expectation (up to the singleton filter, which
acts on each half alike), at the price of half the rows on each side. Splitting by item, not by row,
keeps temporally adjacent (dependent) rows on one side.
"""
import typing as tp

import torch

from ..delay_pattern import delay_align

SHUFFLES = ('global', 'conditional')
NO_PAST = -1
JOINT, SHUFFLED = 0, 1  # the two halves of the split sample


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


def shuffleable(strata: torch.Tensor) -> torch.Tensor:
    """Rows that the conditional shuffle may use: with a past, in a stratum of at least 2 such rows.

    Args:
        strata: [n] long strata (`NO_PAST` allowed).
    Returns:
        [n] bool mask.
    """
    has_past = strata != NO_PAST
    _, inverse, counts = torch.unique(strata, return_inverse=True, return_counts=True)
    return has_past & (counts[inverse] >= 2)


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


def item_halves(batch: int, frames: int, generator: tp.Optional[torch.Generator] = None,
                device: tp.Optional[torch.device] = None) -> torch.Tensor:
    """The half of each aligned row: a random batch // 2 of the items give the shuffled rows, the others the joint.

    Args:
        batch: B items, each with `frames` aligned rows (rows batch-major, as `past_strata`).
        generator: random generator; draws one permutation of B.
    Returns:
        [B * frames] long, `JOINT` or `SHUFFLED`.
    """
    rng_device = generator.device if generator is not None else torch.device('cpu')
    order = torch.randperm(batch, generator=generator, device=rng_device)
    half = torch.full((batch,), JOINT, dtype=torch.long, device=rng_device)
    half[order[:batch // 2]] = SHUFFLED
    return half.repeat_interleave(frames).to(device or rng_device)


def split_items(strata: torch.Tensor, frames: int, generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """(stratum, half) [n, 2] of rows that come item by item, `frames` rows each (a batch, the rows of all ranks
    gathered, or a bank's batches concatenated): [n] strata -> [n, 2] long."""
    n = strata.shape[0]
    if frames < 1 or n % frames:
        raise ValueError(f"{n} rows are not whole items of {frames} aligned frames.")
    return torch.stack([strata, item_halves(n // frames, frames, generator, strata.device)], dim=1)


def kept_rows(strata: torch.Tensor, half: torch.Tensor, which: int) -> torch.Tensor:
    """Indices of the rows of one half that are `shuffleable` within that half: [n] strata and halves -> [n'] long."""
    members = (half == which).nonzero().squeeze(1)
    return members[shuffleable(strata[members])]
