"""Variance of the MMD estimate over seeds: `mmd.scope` rank (mean of per-rank estimates) vs global (one estimate).

Usage: python benchmarks/bench_scope_variance.py [--world 2] [--seeds 200] [--batch 4] [--frames 50]
(CPU, gloo; ~1 min with the defaults.)

Each seed draws new synthetic streams on every rank ([batch, K=4, D=8, frames], Gaussian, frames iid,
so no delay alignment) and new shuffles. Two regimes: `independent` codebooks (the loss's null: E = 0
up to eq. (7)'s shared-code bias) and `dependent` ones (codebook k = 0.9 codebook 0 + 0.44 noise, unit
variance). `rank`: each rank's own estimate over its rows, averaged over ranks (what the rank-scope
gradient is the gradient of, and what is logged); `global`: eq. (7) once over the rows of all ranks
(`gather_rows`), same generator seed on every rank.
Theory for a U-statistic: with dependence the leading variance term is ~ 4 zeta_1 / N for both (N rows
in all), so the ratio is near 1; at independence the estimator is degenerate, its variance ~ 1 / n^2,
so the mean of W estimates over n rows has W times the variance of one over W n rows.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from audiocraft_mmd.losses.scope import gather_rows  # noqa: E402
from audiocraft_mmd.losses import MMDLoss  # noqa: E402

K, D = 4, 8


def streams(regime: str, batch: int, frames: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, K, D, frames, generator=gen)
    if regime == 'dependent':
        z[:, 1:] = 0.9 * z[:, :1] + 0.44 * z[:, 1:]
    return z


def worker(rank: int, world: int, init_file: str, args: argparse.Namespace, out_file: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    torch.set_num_threads(1)
    loss = MMDLoss('gaussian', kernel_kwargs={'sigmas': (1., 5., 10.)}, delay=False)  # frames are iid
    values: dict = {}
    for regime in ('independent', 'dependent'):
        for seed in range(args.seeds):
            z = streams(regime, args.batch, args.frames, seed * world + rank)
            local = loss(z, torch.Generator().manual_seed(seed))
            dist.all_reduce(local)
            one = loss(z, torch.Generator().manual_seed(seed), gather=gather_rows)
            values.setdefault(f'{regime}/rank', []).append(local.item() / world)
            values.setdefault(f'{regime}/global', []).append(one.item())
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump(values, f)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--world', type=int, default=2)
    parser.add_argument('--seeds', type=int, default=200)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--json', help="also write the summary to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'values.json')
        mp.spawn(worker, args=(args.world, os.path.join(tmp, 'init'), args, out), nprocs=args.world, join=True)
        with open(out) as f:
            values = json.load(f)
    rows = args.batch * args.frames
    print(f"world={args.world} seeds={args.seeds} rows per rank={rows} (all ranks: {rows * args.world})")
    print("| regime | scope | mean | std | variance ratio global / rank |")
    print("|---|---|---|---|---|")
    summary = {}
    for regime in ('independent', 'dependent'):
        var = {scope: statistics.variance(values[f'{regime}/{scope}']) for scope in ('rank', 'global')}
        for scope in ('rank', 'global'):
            mean, std = statistics.mean(values[f'{regime}/{scope}']), var[scope] ** 0.5
            summary[f'{regime}/{scope}'] = {'mean': mean, 'std': std}
            ratio = f"{var['global'] / var['rank']:.3f}" if scope == 'global' else ''
            print(f"| {regime} | {scope} | {mean:.3e} | {std:.3e} | {ratio} |")
        summary[f'{regime}/variance_ratio'] = var['global'] / var['rank']
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(summary, world=args.world, seeds=args.seeds, rows_per_rank=rows), f, indent=1)


if __name__ == '__main__':
    main()
