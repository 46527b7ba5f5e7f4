"""Global scope on real ranks (gloo, CPU; issue #29 items 2 and 3). Tile-parallel: with `gather_rows` and
`distributed.tile_share`, each of W ranks computes a disjoint share of the tiles, the shares cover every tile,
and the value and each rank's gradient equal the single-process ones (the gradient as `gather_rows` gives it,
W dL/d(rows_r)). The random features (no gather, all-reduced sums): the same value and gradient too."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from audiocraft_mmd.distributed import gather_rows, tile_share
from audiocraft_mmd.losses import MMDLoss
from audiocraft_mmd.losses.mmd_estimator import Tiles, cross_sum, within_sum

B, K, D, T = 6, 3, 2, 8  # 6 items: 3, 2 or 1 per rank at W = 2 or 3
LOSSES = {'shuffle': dict(exclude_shared=True), 'closed_form': dict(marginals='closed_form'),
          'features': dict(marginals='features', features=16, exclude_shared=True)}  # features: all-reduced sums


def streams() -> torch.Tensor:
    return torch.randn(B, K, D, T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def loss(name: str) -> MMDLoss:
    return MMDLoss(kernel_kwargs={'sigmas': (1., 5.)}, block_size=5, **LOSSES[name])


def _rank(rank: int, world: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=world)
    try:
        per = B // world
        mine = streams()[rank * per:(rank + 1) * per].clone().requires_grad_()
        result = {}
        for name in LOSSES:
            mine.grad = None
            share, reduced = tile_share(), []

            def reduce(t, share=share, reduced=reduced):  # records that the loss used the share
                reduced.append(t.numel())
                return share.reduce(t)
            value = loss(name)(mine, torch.Generator().manual_seed(1), gather=gather_rows,
                               share=share._replace(reduce=reduce))
            value.backward()
            assert bool(reduced) == (name != 'features'), f"{name}: the tile share's use"
            result[name] = (value.item(), mine.grad.clone())
        tiles = Tiles(tile_share())
        rows = torch.randn(23, 4)
        within_sum(loss('shuffle').kernel, rows, 1., 5, None, tiles)
        cross_sum(loss('shuffle').kernel, rows, rows, 1., 5, None, None, tiles)
        result['tiles'] = (tiles.count, tiles.taken)
        torch.save(result, os.path.join(out, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('world', [2, pytest.param(3, marks=pytest.mark.slow)])  # ~10 s each (spawn, imports)
def test_ranks_share_the_tiles_and_match_one_process(world, tmp_path):
    mp.spawn(_rank, args=(world, str(tmp_path / 'store'), str(tmp_path)), nprocs=world, join=True)
    results = [torch.load(tmp_path / f'{rank}.pt') for rank in range(world)]
    whole = streams().requires_grad_()
    per = B // world
    for name in LOSSES:
        whole.grad = None
        value = loss(name)(whole, torch.Generator().manual_seed(1))
        value.backward()
        for rank, result in enumerate(results):
            rank_value, rank_grad = result[name]
            assert rank_value == pytest.approx(value.item(), rel=1e-10)
            # gather_rows's backward: W times the whole estimate's gradient w.r.t. this rank's rows
            assert torch.allclose(rank_grad / world, whole.grad[rank * per:(rank + 1) * per], rtol=1e-8, atol=1e-12)
    count = results[0]['tiles'][0]
    taken = [set(result['tiles'][1]) for result in results]
    assert count == 15 + 25 and set().union(*taken) == set(range(count)) and sum(map(len, taken)) == count
