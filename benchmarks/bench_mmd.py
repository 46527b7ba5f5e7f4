# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Benchmark of the blocked MMD^2 (forward + backward) against a dense autograd reference.

Usage: python benchmarks/bench_mmd.py [--sizes 2048 4096 11776] [--reps 3] [--device cpu]

Inputs: n joint rows of K x D = 4 x 128 features, each codebook scaled to unit mean squared
norm (what MMDLoss's default 'codebook' normalization produces, so every Gaussian radius is
active), and their per-codebook shuffle; multi-scale Gaussian kernel (paper's radii).

Dense reference: what a naive implementation does: three n x n squared-distance matrices
(matmul form), the kernel on them, eq. (7) from their sums, autograd through all of it.

Measurements, each in a fresh subprocess. Time: both implementations in one process, one
untimed pass each, then --reps rounds alternating ours and dense; medians. Alternating makes
the two see the same machine load (this is meant to run on shared machines too); the ratio
columns are medians of the per-round ratios, of wall time and of process CPU time (the CPU
time ratio is the more robust one when other processes compete for the cores). Peak memory
(one subprocess per implementation and n, one forward + backward): on CPU, the growth of the
process's peak resident set size (getrusage ru_maxrss) during that pass over the resident
size just before it (inputs allocated, a small warm-up run done so that thread pools and
allocator arenas exist). Memory subprocesses run with MALLOC_MMAP_THRESHOLD_=131072 so that
glibc serves every tensor with mmap and returns it to the system on free: RSS then follows live
tensor memory; tracemalloc would not see torch's allocations. On
CUDA: torch.cuda.max_memory_allocated over memory_allocated before the pass, plus TFLOP/s
against the matmul bound of 6 n^2 F flops (3 Gram matrices, forward only).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import typing as tp

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from audiocraft_mmd.losses import MultiScaleGaussian, mmd2_unbiased  # noqa: E402

K, D = 4, 128


def make_inputs(n: int, device: str, seed: int = 0) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, K, D, generator=gen) / D ** 0.5
    shuffled = torch.stack([z[torch.randperm(n, generator=gen), k] for k in range(K)], dim=1)
    x = z.reshape(n, -1).to(device).requires_grad_()
    y = shuffled.reshape(n, -1).to(device).requires_grad_()
    return x, y


def dense_mmd2(x: torch.Tensor, y: torch.Tensor, sigmas: tp.Sequence[float]) -> torch.Tensor:
    """Naive eq. (7): full matrices and autograd."""
    n = x.shape[0]

    def kernel(a, b):
        d2 = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.t()).clamp_min(0)
        return sum(torch.exp(-d2 / (2 * s ** 2)) for s in sigmas)

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return within - 2 * kxy.sum() / n ** 2


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _step(impl: str, x: torch.Tensor, y: torch.Tensor, block_size: int) -> float:
    """One forward + backward; returns the loss value."""
    kernel = MultiScaleGaussian()
    x.grad = y.grad = None
    loss = mmd2_unbiased(x, y, kernel, block_size) if impl == 'ours' else dense_mmd2(x, y, kernel.sigmas)
    loss.backward()
    _sync(str(x.device))
    return loss.item()


def memory_worker(impl: str, n: int, device: str, block_size: int) -> dict:
    _step(impl, *make_inputs(256, device, seed=1), block_size)  # warm-up: threads, allocator, kernels
    x, y = make_inputs(n, device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        value = _step(impl, x, y, block_size)
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss_bytes()
        value = _step(impl, x, y, block_size)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {'peak': max(peak, 0), 'value': value}


def time_worker(impls: tp.List[str], n: int, reps: int, device: str, block_size: int) -> dict:
    x, y = make_inputs(n, device)
    for impl in impls:
        _step(impl, x, y, block_size)  # untimed
    wall: tp.Dict[str, tp.List[float]] = {impl: [] for impl in impls}
    cpu: tp.Dict[str, tp.List[float]] = {impl: [] for impl in impls}
    for _ in range(reps):
        for impl in impls:
            start, start_cpu = time.perf_counter(), time.process_time()
            _step(impl, x, y, block_size)
            wall[impl].append(time.perf_counter() - start)
            cpu[impl].append(time.process_time() - start_cpu)
    out: tp.Dict[str, float] = {}
    for impl in impls:
        out[impl] = statistics.median(wall[impl])
        out[impl + '_cpu'] = statistics.median(cpu[impl])
    if len(impls) == 2:
        out['ratio'] = statistics.median(d / o for o, d in zip(wall['ours'], wall['dense']))
        out['ratio_cpu'] = statistics.median(d / o for o, d in zip(cpu['ours'], cpu['dense']))
    return out


def _run(args: argparse.Namespace, n: int, *extra: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--sizes', str(n), '--reps', str(args.reps),
           '--device', args.device, '--block-size', str(args.block_size), '--threads', str(args.threads), *extra]
    env = dict(os.environ)
    if '--memory-worker' in extra:
        # glibc serves every allocation above 128 kB with mmap (no dynamic threshold), so that freed
        # tensors leave the resident set and ru_maxrss measures the live peak. Timing runs keep the
        # default allocator behaviour.
        env['MALLOC_MMAP_THRESHOLD_'] = '131072'
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _available_bytes() -> int:
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable'):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[2048, 4096, 11776])
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--block-size', type=int, default=1024)
    parser.add_argument('--threads', type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument('--json', help="also write the rows to this JSON file")
    parser.add_argument('--memory-worker', choices=['ours', 'dense'], help=argparse.SUPPRESS)
    parser.add_argument('--time-worker', nargs='+', choices=['ours', 'dense'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, args.sizes[0], args.device, args.block_size)))
        return
    if args.time_worker:
        print(json.dumps(time_worker(args.time_worker, args.sizes[0], args.reps, args.device, args.block_size)))
        return
    cuda = args.device.startswith('cuda')
    F = K * D
    print(f"device={args.device} F={F} block_size={args.block_size} reps={args.reps} threads={torch.get_num_threads()}")
    header = (f"{'n':>6} | {'ours s':>8} {'cpu s':>8} {'ours MB':>8} | {'dense s':>8} {'cpu s':>8} {'dense MB':>9} | "
              f"{'time x':>7} {'cpu x':>6} {'mem %':>6}")
    header += f" | {'TFLOP/s':>7}" if cuda else ''
    print(header)
    print('-' * len(header))
    rows = []
    for n in args.sizes:
        ours = _run(args, n, '--memory-worker', 'ours')
        # The dense reference peaks at about 26 n x n float32 matrices (measured at n = 4096): skip it
        # rather than push a machine into swap or the OOM killer.
        need = 26 * n * n * 4
        run_dense = need < 0.9 * (torch.cuda.mem_get_info()[0] if cuda else _available_bytes())
        dense = _run(args, n, '--memory-worker', 'dense') if run_dense else None
        times = _run(args, n, '--time-worker', 'ours', *(['dense'] if run_dense else []))
        line = f"{n:>6} | {times['ours']:>8.3f} {times['ours_cpu']:>8.3f} {ours['peak'] / 2 ** 20:>8.1f} | "
        if dense is None:
            line += f"{'skipped (memory)':>27} | {'':>7} {'':>6} {'':>6}"
        else:
            assert abs(ours['value'] - dense['value']) <= 1e-5 * max(1., abs(dense['value'])), (ours, dense)
            line += f"{times['dense']:>8.3f} {times['dense_cpu']:>8.3f} {dense['peak'] / 2 ** 20:>9.1f} | "
            line += (f"{times['ratio']:>7.2f} {times['ratio_cpu']:>6.2f} "
                     f"{100 * ours['peak'] / max(dense['peak'], 1):>5.1f}%")
        if cuda:
            line += f" | {6 * n * n * F / times['ours'] / 1e12:>7.2f}"
        print(line, flush=True)
        rows.append({'n': n, 'block_size': args.block_size, 'device': args.device, 'ours_s': times['ours'],
                     'ours_peak_mib': ours['peak'] / 2 ** 20, 'dense_s': times.get('dense'),
                     'dense_peak_mib': None if dense is None else dense['peak'] / 2 ** 20,
                     'tflops_fwd_bound': 6 * n * n * F / times['ours'] / 1e12})
    print("s: median wall time, cpu s: median process CPU time (all threads) of forward + backward; "
          "time x / cpu x: median over rounds of dense / ours; mem %: ours peak / dense peak "
          "(extra memory of one forward + backward)")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
