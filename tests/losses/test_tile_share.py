"""Tile shares of the blocked estimator (`scope.TileShare`): W ranks' shares are disjoint, cover every
tile, and their summed values and gradients are the whole estimate's (checked in one process: each "rank"
computes its share, the reduce sums what the other ranks would send)."""
import pytest
import torch

from audiocraft_mmd.losses import mmd2_unbiased
from audiocraft_mmd.losses.estimators.blocked import Tiles, cross_sum, within_sum
from audiocraft_mmd.losses.scope import TileShare
from audiocraft_mmd.losses.kernels import MultiScaleGaussian


@pytest.mark.parametrize('world', [2, 3])
def test_shares_are_disjoint_and_cover_all_tiles(world):
    kernel, x, y = MultiScaleGaussian((1., 5.)), torch.randn(23, 6), torch.randn(23, 6)
    taken = []
    for rank in range(world):
        tiles = Tiles(TileShare(rank, world, lambda t: t))
        within_sum(kernel, x, 1., 5, None, tiles)
        cross_sum(kernel, x, y, 1., 5, None, None, tiles)
        taken.append(set(tiles.taken))
    total = tiles.count
    assert total == 15 + 25  # 5 blocks: 15 tiles on and above the diagonal, 25 cross tiles
    assert set().union(*taken) == set(range(total))
    assert sum(len(t) for t in taken) == total


@pytest.mark.parametrize('world', [2, 3])
def test_shared_values_and_gradients_sum_to_the_whole(world):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(19, 6, generator=g, dtype=torch.float64)
    y0 = x0[torch.randperm(19, generator=g)] + 0.3 * torch.randn(19, 6, generator=g, dtype=torch.float64)
    kernel = MultiScaleGaussian((1., 5.))
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    whole = mmd2_unbiased(x, y, kernel, block_size=4)
    whole.backward()
    partial_values = []
    for rank in range(world):  # the value each share computes, before the reduce
        tiles_value = {}

        def keep(t, rank=rank):
            tiles_value[rank] = t.item()
            return t
        mmd2_unbiased(x0, y0, kernel, block_size=4, share=TileShare(rank, world, keep))
        partial_values.append(tiles_value[rank])
    assert sum(partial_values) == pytest.approx(whole.item(), rel=1e-12, abs=1e-15)
    grads_x, grads_y = torch.zeros_like(x0), torch.zeros_like(y0)
    for rank in range(world):
        xs, ys = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        mmd2_unbiased(xs, ys, kernel, block_size=4, share=TileShare(rank, world, lambda t: t)).backward()
        grads_x += xs.grad / world  # each share's gradient is W times its part (the gather sums them)
        grads_y += ys.grad / world
    assert torch.allclose(grads_x, x.grad, rtol=1e-10, atol=1e-14)
    assert torch.allclose(grads_y, y.grad, rtol=1e-10, atol=1e-14)
