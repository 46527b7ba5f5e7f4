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
one. Such rows, and rows whose stratum holds a single row (its only "shuffle" would be the row itself,
a joint sample passed off as a factorized one), are left out of both the joint and the shuffled sets.
"""
import typing as tp

import torch

from ..delay_pattern import delay_align

SHUFFLES = ('global', 'conditional')
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
