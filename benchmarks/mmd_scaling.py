"""Shuffle vs closed-form MMD (issue #29): the value's SD over seeds at equal n, and the time of a forward and
backward, in one table with the ratios measured in the same run.

Usage: nice python benchmarks/mmd_scaling.py [--seeds 20] [--rows 1024] [--time-rows 2048] [--threads 1]
    [--worlds 1,2,4] [--rank-rows 256]
(CPU; about 10 minutes with the defaults, most of it the M = 4096 features.) Then the gloo scaling rows (see
`scaling`).

Data (synthetic, like `bench_scope_variance.py`): rows [n, K=4, D=8] Gaussian, iid rows; `independent`
codebooks, or `dependent` ones (codebook k = 0.9 codebook 0 + 0.44 noise, unit variance). Kernel: the paper's
multi-scale Gaussian. Per seed: new data and (shuffle) a new permutation per codebook. `SD data+perm`: SD over
seeds of the estimate; `SD perm`: SD over seeds of the shuffle on the seed-0 data (the permutation noise the
closed form removes; 0 for it by construction). The standard error of an SD over R seeds is about SD /
sqrt(2 (R - 1)). Timing: forward + backward of the loss at n = --time-rows rows of F = 4 x 128 = 512 features
(the paper's codec width), median of 3 runs after a warm-up.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from audiocraft_mmd.losses import MMDLoss  # noqa: E402

K, D = 4, 8
ESTIMATORS = {'shuffle': {}, 'closed_form': {'marginals': 'closed_form'}}
FEATURES = (256, 1024, 4096)  # M per radius; SD rows only with exclude_shared (the unbiased variants, for time)
for _m in FEATURES:
    ESTIMATORS[f'features{_m}'] = {'marginals': 'features', 'features': _m}
# The H100 measurements (docs/gpu/): plain step, steps per macro-batch, exact MMD's re-encode and MMD.
H100_STEP, STEPS, H100_REENCODE, H100_MMD = 0.173, 32, 0.32 - 0.054, 0.054


def rows(regime: str, n: int, seed: int, dim: int = D) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, K, dim, generator=gen)
    if regime == 'dependent':
        z[:, 1:] = 0.9 * z[:, :1] + 0.44 * z[:, 1:]
    return z


def as_streams(z: torch.Tensor) -> torch.Tensor:
    """[n, K, D] rows as streams [1, K, D, n] (delay off: the rows are iid)."""
    return z.permute(1, 2, 0)[None]


def loss(name: str, exclude_shared: bool) -> MMDLoss:
    return MMDLoss(delay=False, exclude_shared=exclude_shared, **ESTIMATORS[name])


def value_sd(name: str, regime: str, exclude: bool, n: int, seeds: int) -> tuple:
    mmd = loss(name, exclude)
    over_data = [mmd(as_streams(rows(regime, n, s)), torch.Generator().manual_seed(s)).item() for s in range(seeds)]
    fixed = as_streams(rows(regime, n, 0))
    over_perm = [mmd(fixed, torch.Generator().manual_seed(s)).item() for s in range(seeds)]
    return statistics.mean(over_data), statistics.stdev(over_data), statistics.stdev(over_perm)


def step_time(name: str, n: int) -> float:
    mmd = loss(name, False)
    z = as_streams(rows('dependent', n, 0, dim=128)).requires_grad_()
    times = []
    for run in range(4):
        start = time.perf_counter()
        mmd(z, torch.Generator().manual_seed(run)).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, default=20)
    parser.add_argument('--rows', type=int, default=1024)
    parser.add_argument('--time-rows', type=int, default=2048)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--worlds', default='1,2,4', help="gloo world sizes for the scaling rows ('' skips them)")
    parser.add_argument('--rank-rows', type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"rows n={args.rows}, K={K}, D={D}, seeds 0..{args.seeds - 1}; timing n={args.time_rows}, F=512, "
          f"{args.threads} thread(s)")
    print(f"{'regime':12} {'exclude':8} {'estimator':12} {'mean':>11} {'SD data+perm':>13} {'SD perm':>11} "
          f"{'SD ratio':>9}")
    for regime in ('independent', 'dependent'):
        for exclude in (False, True):
            base = None
            for name in ESTIMATORS:
                if name.startswith('features') and not exclude:
                    continue
                mean, sd, sd_perm = value_sd(name, regime, exclude, args.rows, args.seeds)
                base = base or sd
                print(f"{regime:12} {str(exclude):8} {name:12} {mean:11.3e} {sd:13.3e} {sd_perm:11.3e} "
                      f"{sd / base:9.3f}")
    times = {name: step_time(name, args.time_rows) for name in ESTIMATORS}
    for name, seconds in times.items():
        print(f"time fwd+bwd {name:12} {seconds:8.3f} s  ratio {seconds / times['shuffle']:.3f}")
    if args.worlds:
        scaling([int(w) for w in args.worlds.split(',')], args.rank_rows)


SCALED = {  # name: (loss options, share the tiles)
    'shuffle gathered': ({}, False), 'shuffle tiles': ({}, True),
    'closed_form tiles': ({'marginals': 'closed_form'}, True),
    'features256': ({'marginals': 'features', 'features': 256}, False),
}


def _rank(rank: int, world: int, store: str, rows_per_rank: int, out: str) -> None:
    import torch.distributed as dist
    from audiocraft_mmd.losses.scope import gather_rows, tile_share
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=world)
    result = {}
    for name, (options, tiles) in SCALED.items():
        mmd = MMDLoss(delay=False, **options)
        z = as_streams(rows('dependent', rows_per_rank, rank, dim=128)).requires_grad_()
        cpu = []
        for run in range(3):
            dist.barrier()
            start = time.process_time()  # this rank's CPU time: 4 ranks share 2 cores here, so no wall clock
            mmd(z, torch.Generator().manual_seed(run), gather=gather_rows,
                share=tile_share() if tiles else None).backward()
            cpu.append(time.process_time() - start)
        result[name] = statistics.median(cpu[1:] if len(cpu) > 1 else cpu)
    torch.save(result, os.path.join(out, f'{rank}.pt'))
    dist.destroy_process_group()


def _fit(worlds, seconds, power: int):
    """Least squares t = alpha + beta W^power."""
    x = torch.tensor([float(w) ** power for w in worlds], dtype=torch.float64)
    design = torch.stack([torch.ones_like(x), x], 1)
    alpha, beta = torch.linalg.lstsq(design, torch.tensor(seconds, dtype=torch.float64)[:, None]).solution[:, 0]
    return float(alpha), float(beta)


def scaling(worlds, rows_per_rank: int) -> None:
    """Per-rank CPU time of the loss at W ranks (gloo, 1 thread each) and a cost model extrapolated to W = 8..1024.

    Model assumptions: per-rank work of the whole estimate over gathered rows grows as W^2 (every rank computes
    all (W n)^2 pairs), of a tile share as W (1/W of them), of the features as W^0 (own rows, fixed-size
    all-reduce), fitted as W^1 all the same so that what the measurement shows is kept; communication
    (all-gather of W n rows, all-reduce of the O(W n F) gradient or of (K + 1) M sums) is left out, except the
    CPU time gloo's threads spend in this process. Step ratio at W: the issue's H100 step at
    W = 1 (32 plain steps of 0.173 s, re-encode 0.266 s, MMD 0.054 s per macro-batch) with the MMD scaled by
    this model's t(W) / t(1).
    """
    import tempfile
    import torch.multiprocessing as mp
    per_world = {}
    for world in worlds:
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_rank, args=(world, os.path.join(tmp, 'store'), rows_per_rank, tmp), nprocs=world, join=True)
            results = [torch.load(os.path.join(tmp, f'{r}.pt')) for r in range(world)]
        per_world[world] = {name: max(r[name] for r in results) for name in SCALED}  # the slowest rank
    print(f"per-rank CPU s of fwd+bwd, n={rows_per_rank} rows per rank, F=512 (slowest rank, median of 2)")
    print(f"{'estimator':18} " + ' '.join(f'W={w:<6}' for w in worlds) + ' | model: t(W)/t(1) and H100 step ratio at '
          'W=8, 64, 1024')
    for name in SCALED:
        seconds = [per_world[w][name] for w in worlds]
        power = 2 if name == 'shuffle gathered' else 1  # features: ideally W^0, fitted as W^1 (gloo overhead)
        alpha, beta = _fit(worlds, seconds, power)
        model = [(alpha + beta * w ** power) / (alpha + beta) for w in (8, 64, 1024)]
        steps = [(STEPS * H100_STEP + H100_REENCODE + H100_MMD * r) / (STEPS * H100_STEP) for r in model]
        print(f"{name:18} " + ' '.join(f'{t:<8.3f}' for t in seconds) + ' | ' +
              ' '.join(f'{r:.1f}x/{s:.3f}' for r, s in zip(model, steps)))


if __name__ == '__main__':
    main()
