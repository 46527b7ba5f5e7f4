# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""How the MMD's rows cross ranks under `mmd.scope: global`: one MMD estimate over every rank's rows.

An estimator declares how it crosses (`MMDEstimator.crosses_ranks`): 'gather' (:func:`gather_rows`, and each
rank computing its :func:`tile_share` of the tiles) or 'reduce' (:func:`all_reduce_sum` of its sums).

:func:`gather_rows` concatenates the rows of all ranks (rank 0 first) on every rank, with autograd:
every rank then computes the same estimate L over all N rows (same rows, same shuffles: the
solver's MMD generator is seeded identically on every rank and the permutations are drawn over the
global row count N, so all ranks draw the same numbers in the same order). In backward, the
gradient w.r.t. all N rows is summed over ranks (all-reduce) and each rank keeps the slice of its
own rows: rank r gets W * dL/d(rows_r) when every rank computed the same L. audiocraft's
`flashy.distrib.sync_model` then averages parameter gradients over the W ranks, which gives exactly
dL/dtheta = sum_r J_r^T dL/d(rows_r): the gradient of the one global estimate.

All-reduce instead of reduce-scatter: gloo has no reduce-scatter, and the [N, F] gradient is small
next to the model's. Ranks may hold different row counts (padded for the collective, then trimmed).
Outside a distributed run (or with one rank) the rows are returned unchanged.

Tile-parallel (:func:`tile_share`): every rank holding the same rows, each computes a disjoint 1/W share of the
estimate's tiles, so the per-rank cost is O(W n^2) instead of O(W^2 n^2) for W ranks of n rows.
"""
import typing as tp

import torch
import torch.distributed as dist


class TileShare(tp.NamedTuple):
    """This rank's share of the tiles of one estimate (`mmd.scope: global`, tile-parallel, issue #29).

    Tiles are numbered in the order an estimate visits them, and rank ``rank`` of ``world`` takes those
    with number ``t % world == rank``: the shares are disjoint and cover every tile. ``reduce`` sums a
    tensor over the ranks (an all-reduce, see :func:`tile_share`).
    """
    rank: int
    world: int
    reduce: tp.Callable[[torch.Tensor], torch.Tensor]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_counts(count: int, device: torch.device) -> tp.List[int]:
    local = torch.tensor([count], dtype=torch.long, device=device)
    counts = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, local)
    return [int(c.item()) for c in counts]


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        counts = _gather_counts(rows.shape[0], rows.device)
        longest = max(counts)
        padded = rows.new_zeros((longest, *rows.shape[1:]))
        padded[:rows.shape[0]] = rows
        chunks = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(chunks, padded.contiguous())
        rank = dist.get_rank()
        ctx.start, ctx.count = sum(counts[:rank]), counts[rank]
        return torch.cat([chunk[:count] for chunk, count in zip(chunks, counts)], dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total[ctx.start:ctx.start + ctx.count]


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Rows [n_r, ...] of every rank, concatenated in rank order: [sum_r n_r, ...] (see module docstring).

    Every rank must call it at the same point (it is a collective), also in backward.
    """
    if not is_distributed():
        return rows
    return _GatherRows.apply(rows)


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    total = tensor.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the ranks' gradients too: every rank computes the same loss from the sum,
    so each gets W dL/d(its part), the convention of `gather_rows`."""
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _all_reduce(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _all_reduce(grad.contiguous())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Autograd-aware sum over ranks (the random-feature MMD's sums, `mmd.marginals: features`); the tensor
    itself outside a distributed run."""
    if not is_distributed():
        return tensor
    return _AllReduceSum.apply(tensor)


def tile_share() -> tp.Optional[TileShare]:
    """This rank's share of the tiles of an estimate over gathered rows (tile-parallel global scope, issue #29):
    each rank computes 1/W of the tiles and the value is all-reduced; the gradient each rank returns is W times
    its share's, which `gather_rows`'s backward sums into the same W dL/d(rows_r) as when every rank computes the
    whole estimate. None outside a distributed run."""
    if not is_distributed():
        return None
    return TileShare(dist.get_rank(), dist.get_world_size(), _all_reduce)
