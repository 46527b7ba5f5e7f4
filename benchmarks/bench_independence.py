"""Timing of the full codebook-independence report at the paper's scale.

250k frames x 4 codebooks x 2048 entries (random codes with some dependence): the paper's
protocol (5 couples), the full pairwise matrix, the per-codebook mutual information, and the
same on delay-aligned frames; plus the streaming metric fed in batches. Target: < 1 s on CPU
for the one-shot report.

    python benchmarks/bench_independence.py [--frames 250000] [--device cpu]
"""
import argparse
import time
import typing as tp

import torch

from audiocraft_mmd.metrics import CodebookIndependence
from audiocraft_mmd.metrics import information as info


def make_codes(frames: int, num_codebooks: int, cardinality: int, seed: int = 0, items: int = 100) -> torch.Tensor:
    """[items, K, frames / items] codes: each codebook copies the previous one (or the previous frame
    of it) with probability 0.3, otherwise uniform."""
    g = torch.Generator().manual_seed(seed)
    T = frames // items
    codes = torch.randint(0, cardinality, (items, num_codebooks, T), generator=g)
    for k in range(1, num_codebooks):
        copy = torch.rand(items, T, generator=g) < 0.3
        source = codes[:, k - 1] if k % 2 else codes[:, k - 1].roll(1, dims=-1)
        codes[:, k] = torch.where(copy, source, codes[:, k])
    return codes


class Timer:
    def __init__(self):
        self.parts: tp.List[tp.Tuple[str, float]] = []

    def __call__(self, name: str, fn: tp.Callable, *args, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.parts.append((name, time.perf_counter() - start, time.process_time() - start_cpu))
        return out

    @property
    def total(self) -> float:
        return sum(wall for _, wall, _ in self.parts)


def full_report(codes: torch.Tensor, cardinality: int, timer: Timer) -> None:
    """What `information.independence_report` does, part by part, for both variants."""
    pairs = info.sample_pairs(codes.shape[1], 5, seed=0)
    for delay in [False, True]:
        tag = 'delay' if delay else 'plain'
        states = timer(f'{tag}: count joint states', info.states_from_codes, codes, cardinality, delay=delay)
        infos = timer(f'{tag}: all couples', info.all_pairs_information, states)
        timer(f'{tag}: protocol + matrices', lambda: (info.tc_summary(states, pairs, [infos[p] for p in pairs]),
                                                      info.tc_matrices(states, infos)))
        timer(f'{tag}: per-codebook MI', info.codebook_statistics, states)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--frames', type=int, default=250_000)
    parser.add_argument('--num-codebooks', type=int, default=4)
    parser.add_argument('--cardinality', type=int, default=2048)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help="torch intra-op threads (on a loaded machine, 1 avoids OpenMP spin-waiting)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    codes = make_codes(args.frames, args.num_codebooks, args.cardinality).to(args.device)
    print(f"codes {tuple(codes.shape)}: {codes.shape[0] * codes.shape[2]} frames, M = {args.cardinality}")
    full_report(codes, args.cardinality, Timer())  # warm-up
    best: tp.Optional[Timer] = None
    for _ in range(args.repeats):
        timer = Timer()
        full_report(codes, args.cardinality, timer)
        if best is None or timer.total < best.total:
            best = timer
    assert best is not None
    print(f"  {'part':<36s} {'wall':>8s}    {'CPU (all threads)':>8s}")
    for name, wall, cpu in best.parts:
        print(f"  {name:<36s} {1000 * wall:8.1f} ms {1000 * cpu:8.1f} ms")
    cpu_total = sum(cpu for _, _, cpu in best.parts)
    print(f"  {'total one-shot report':<36s} {1000 * best.total:8.1f} ms {1000 * cpu_total:8.1f} ms "
          f"(best of {args.repeats})")

    metric = CodebookIndependence(args.num_codebooks, args.cardinality, delay=True).to(args.device)
    start = time.perf_counter()
    for batch in codes.split(8):
        metric.update(batch)
    update_time = time.perf_counter() - start
    start = time.perf_counter()
    stats = metric.compute()
    compute_time = time.perf_counter() - start
    print(f"  {'streaming: update (batches of 8)':<36s} {1000 * update_time:8.1f} ms")
    print(f"  {'streaming: compute':<36s} {1000 * compute_time:8.1f} ms")
    print(f"tc = {stats['tc']:.3f} % (MM {stats['tc_mm']:.3f}), tc_delay = {stats['tc_delay']:.3f} %, "
          f"n_frames = {int(stats['n_frames'])}")


if __name__ == '__main__':
    main()
