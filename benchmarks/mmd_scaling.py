"""Shuffle vs closed-form MMD (issue #29): the value's SD over seeds at equal n, and the time of a forward and
backward, in one table with the ratios measured in the same run.

Usage: nice python benchmarks/mmd_scaling.py [--seeds 30] [--rows 1024] [--time-rows 2048] [--threads 1]
(CPU; about a minute with the defaults.)

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
    parser.add_argument('--seeds', type=int, default=30)
    parser.add_argument('--rows', type=int, default=1024)
    parser.add_argument('--time-rows', type=int, default=2048)
    parser.add_argument('--threads', type=int, default=1)
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
                mean, sd, sd_perm = value_sd(name, regime, exclude, args.rows, args.seeds)
                base = base or sd
                print(f"{regime:12} {str(exclude):8} {name:12} {mean:11.3e} {sd:13.3e} {sd_perm:11.3e} "
                      f"{sd / base:9.3f}")
    times = {name: step_time(name, args.time_rows) for name in ESTIMATORS}
    for name, seconds in times.items():
        print(f"time fwd+bwd {name:12} {seconds:8.3f} s  ratio {seconds / times['shuffle']:.3f}")


if __name__ == '__main__':
    main()
