"""Global scope on real ranks (gloo, CPU; issue #29 items 2 and 3). Tile-parallel: with `gather_rows` and
`distributed.tile_share`, each of W ranks computes a disjoint share of the tiles, the shares cover every tile,
and the value and each rank's gradient equal the single-process ones (the gradient as `gather_rows` gives it,
W dL/d(rows_r)). The random features (no gather, all-reduced sums): the same value and gradient too, and so
does their memory bank, whose rows stay on their rank."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from audiocraft_mmd.losses.scope import all_reduce_sum, gather_rows, tile_share
from audiocraft_mmd.losses import MMDBank, MMDLoss
from audiocraft_mmd.losses.estimators.blocked import Tiles, cross_sum, within_sum

B, K, D, T = 6, 3, 2, 8  # 6 items: 3, 2 or 1 per rank at W = 2 or 3
LOSSES = {'shuffle': dict(exclude_shared=True), 'closed_form': dict(marginals='closed_form'),
          'features': dict(marginals='features', features=16, exclude_shared=True)}  # features: all-reduced sums


def streams() -> torch.Tensor:
    return torch.randn(B, K, D, T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def loss(name: str) -> MMDLoss:
    return MMDLoss(kernel_kwargs={'sigmas': (1., 5.)}, block_size=5, **LOSSES[name])


def features_bank(mine, reduce=None):
    """Two steps of the random-feature bank on this rank's share (`mine`) of 12 rows per step: (value, grad)."""
    def rows(seed):
        return torch.randn(12, K, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    bank = MMDBank(loss('features'), num_batches=2)
    bank(mine(rows(10)), torch.Generator().manual_seed(5), reduce=reduce)
    current = mine(rows(11)).clone().requires_grad_()
    result = bank(current, torch.Generator().manual_seed(6), with_value=True, reduce=reduce)
    result.loss.backward()
    return result.value.item(), current.grad


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
        result['features_bank'] = features_bank(lambda rows: rows[rank * 12 // world:(rank + 1) * 12 // world],
                                                all_reduce_sum)
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
    value, grad = features_bank(lambda rows: rows)
    for rank, result in enumerate(results):  # the bank's rows stay on their rank: only the sums are reduced
        rank_value, rank_grad = result['features_bank']
        assert rank_value == pytest.approx(value, rel=1e-10)
        assert torch.allclose(rank_grad / world, grad[rank * 12 // world:(rank + 1) * 12 // world], rtol=1e-8,
                              atol=1e-12)
    count = results[0]['tiles'][0]
    taken = [set(result['tiles'][1]) for result in results]
    assert count == 15 + 25 and set().union(*taken) == set(range(count)) and sum(map(len, taken)) == count
