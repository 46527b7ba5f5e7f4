# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Throughput of the MMD estimators (issue #29) against the number of rows n and against the TF32 matmul peak.

Usage: python benchmarks/estimator_throughput.py [--sizes 12032 50000 100000] [--reps 3] [--device cuda]
    [--block-size 4096] [--features 1024] [--budget-s 20] [--peak-tflops P] [--json PATH]

What it measures: the median wall time over --reps of one forward + backward of `MMDLoss(delay=False, ...)` on
streams [1, K=4, D=128, n] (F = K D = 512 features, the paper codec's width; Gaussian codes scaled to unit mean
squared norm per codebook, so every radius of the paper's kernel is active), per estimator: `shuffle` (eq. (7),
the default), `closed_form` and `features` (M = --features frequencies per radius). On CUDA the times are
synchronized and TF32 matmuls are allowed (`torch.backends.cuda.matmul.allow_tf32`; training leaves them off).
One untimed run per estimator at the smallest size warms it up; the median absorbs each size's first call.

Flop model (matmul flops only, read off the code; the exponentials and the elementwise work are not counted, so
the fraction of the peak is a lower bound on how busy the device is), S radii (6), block tiles of any size:
- shuffle (`estimators.blocked._accumulate_tile`): each tile entry costs one distance product and, with the gradient
  computed in forward, one product per side, 3 x 2 F flops; the XX and YY sums visit the upper tiles (n^2 / 2
  entries each), XY all n^2: 12 n^2 F.
- closed_form (`estimators.closed_form`): upper tiles only (n^2 / 2 entries), batched over codebooks (2 F flops
  per entry for the K distances); the first pass computes the distances, the second recomputes them and applies the
  coefficients to both sides' rows (2 x 2 F): (2 + 2 + 4) F n^2 / 2 = 4 n^2 F.
- features (`estimators.features`): per radius the phases [K, n, M] are one product of the rows with the frequencies
  (2 n M F) and autograd's backward one more (the frequencies are constants): 4 n M S F.

A size whose run would take the estimator past --budget-s (its time so far, plus --reps times the time predicted
from its previous size, as n^2 for shuffle / closed_form, n for features) is skipped with a row saying so;
a CUDA out-of-memory error is caught and recorded, and larger sizes of that estimator are skipped. The JSON is
rewritten after every row, so that a timeout keeps the rows measured.
"""
import argparse
import json
import os
import statistics
import sys
import time
import typing as tp

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from audiocraft_mmd.losses import MMDLoss  # noqa: E402

K, D = 4, 128
ESTIMATORS = ('shuffle', 'closed_form', 'features')
# How a run's time grows with n, for the budget's prediction.
POWER = {'shuffle': 2, 'closed_form': 2, 'features': 1}


def model_flops(estimator: str, n: int, features: int, sigmas: int, F: int = K * D) -> float:
    """Matmul flops of one forward + backward (see the module docstring)."""
    if estimator == 'shuffle':
        return 12. * n * n * F
    if estimator == 'closed_form':
        return 4. * n * n * F
    return 4. * n * features * sigmas * F


def predicted_cost(estimator: str, n: int, last: tp.Optional[tp.Tuple[int, float]], reps: int) -> float:
    """Seconds that --reps runs at n should take, extrapolated from the last measured (n, seconds); 0 if none."""
    if last is None:
        return 0.
    n_prev, seconds = last
    return reps * seconds * (n / n_prev) ** POWER[estimator]


def build_loss(estimator: str, features: int, block_size: int) -> MMDLoss:
    options: tp.Dict[str, tp.Any] = {} if estimator == 'shuffle' else {'marginals': estimator}
    if estimator == 'features':
        options['features'] = features
    return MMDLoss(delay=False, block_size=block_size, **options)


def make_streams(n: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1, K, D, n, generator=gen) / D ** 0.5  # unit mean squared norm per codebook
    return z.to(device).requires_grad_()


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def run_times(loss: MMDLoss, z: torch.Tensor, reps: int) -> tp.List[float]:
    """Wall seconds of `reps` forward + backward passes, each with its own shuffle / frequency draw."""
    device, times = str(z.device), []
    for rep in range(reps):
        z.grad = None
        _sync(device)
        start = time.perf_counter()
        loss(z, torch.Generator().manual_seed(rep)).backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


class Estimator:
    """One estimator's loss and budget: time spent so far, last measured size, whether it ran out of memory."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name = name
        self.loss = build_loss(name, args.features, args.block_size)
        self.spent = 0.
        self.last: tp.Optional[tp.Tuple[int, float]] = None
        self.oom_at: tp.Optional[int] = None
        self.warm = False

    def measure(self, n: int, z: torch.Tensor, args: argparse.Namespace) -> tp.Dict[str, tp.Any]:
        """{'seconds': median} or {'status': why there is no time}."""
        if self.oom_at is not None:
            return {'status': f'skipped (out of memory at n={self.oom_at})'}
        predicted = predicted_cost(self.name, n, self.last, args.reps)
        if self.spent + predicted > args.budget_s:
            return {'status': f'skipped (budget: {predicted:.1f} s predicted, {self.spent:.1f} s spent)'}
        try:
            if not self.warm:
                self.spent += sum(run_times(self.loss, z, 1))
                self.warm = True
            times = run_times(self.loss, z, args.reps)
        except torch.cuda.OutOfMemoryError:
            self.oom_at = n
            z.grad = None
            torch.cuda.empty_cache()
            return {'status': 'out of memory'}
        self.spent += sum(times)
        self.last = (n, statistics.median(times))
        return {'seconds': self.last[1]}


def make_row(name: str, n: int, result: dict, base: tp.Optional[float], args: argparse.Namespace,
             sigmas: int) -> tp.Dict[str, tp.Any]:
    flops = model_flops(name, n, args.features, sigmas)
    row: tp.Dict[str, tp.Any] = {'estimator': name, 'n': n, 'F': K * D, 'features': args.features if name ==
                                 'features' else None, 'block_size': args.block_size, 'device': args.device,
                                 'reps': args.reps, 'model_flops': flops, 'status': result.get('status', 'ok'),
                                 'seconds': None, 'tflops': None, 'fraction_of_tf32_peak': None,
                                 'ratio_vs_shuffle': None}
    seconds = result.get('seconds')
    if seconds is not None:
        row.update(seconds=seconds, tflops=flops / seconds / 1e12)
        if args.peak_tflops:
            row['fraction_of_tf32_peak'] = row['tflops'] / args.peak_tflops
        if base:
            row['ratio_vs_shuffle'] = seconds / base
    return row


def _cell(value: tp.Optional[float], fmt: str) -> str:
    return 'n/a' if value is None else format(value, fmt)


def print_row(row: tp.Dict[str, tp.Any]) -> None:
    print(f"| {row['estimator']} | {row['n']} | {_cell(row['seconds'], '.4f')} | {row['model_flops'] / 1e12:.3g} | "
          f"{_cell(row['tflops'], '.3g')} | {_cell(row['fraction_of_tf32_peak'], '.3f')} | "
          f"{_cell(row['ratio_vs_shuffle'], '.3f')} | {row['status']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[12032, 50000, 100000])
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--estimators', nargs='+', choices=ESTIMATORS, default=list(ESTIMATORS))
    parser.add_argument('--features', type=int, default=1024, help="M, frequencies per radius (features)")
    parser.add_argument('--block-size', type=int, default=1024, help="tile side of shuffle and closed_form")
    parser.add_argument('--budget-s', type=float, default=20., help="seconds per estimator, warm-up included")
    parser.add_argument('--peak-tflops', type=float, help="TF32 matmul peak (device_check_tools.py env)")
    parser.add_argument('--json', help="also write the rows to this JSON file (after every row)")
    args = parser.parse_args()
    if args.device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True
    estimators = [Estimator(name, args) for name in ESTIMATORS if name in args.estimators]  # shuffle first: the base
    sigmas = len(estimators[0].loss.kernel.sigmas)
    print(f"device={args.device} K={K} D={D} F={K * D} block_size={args.block_size} M={args.features} "
          f"S={sigmas} reps={args.reps} budget={args.budget_s:g} s peak={args.peak_tflops or 'n/a'} TFLOP/s")
    print("\n| estimator | n | s | model TFLOP | TFLOP/s | of TF32 peak | ratio vs shuffle | status |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for n in sorted(args.sizes):
        z = make_streams(n, args.device)
        base = None  # the shuffle's time at this n, this run
        for est in estimators:
            result = est.measure(n, z, args)
            if est.name == 'shuffle':
                base = result.get('seconds')
            rows.append(make_row(est.name, n, result, base, args, sigmas))
            print_row(rows[-1])
            if args.json:
                with open(args.json, 'w') as f:
                    json.dump(rows, f, indent=1)
        del z
    print("s: median wall seconds of forward + backward; model TFLOP: the docstring's matmul flop model; "
          "ratio vs shuffle: s / the shuffle's s at the same n in this run")


if __name__ == '__main__':
    main()
