"""Cost of the non-finite guard (`audiocraft_mmd/solvers/finite_steps.py`) per training step.

Usage: python benchmarks/bench_finite_steps.py [--configs debug paper] [--steps 8] [--repeats 5] [--batch 2]
                                               [--threads 1] [--json PATH]

Guarded: `solver.run_step`, the whole chain of our compression solver (the batch check, the optimizers' gradient
hook, our solver layers). Unguarded: audiocraft's `CompressionSolver.run_step` called directly on the same solver,
its gradient hooks removed. Both run on the same pre-loaded batches (data loading not timed) of a synthetic music
folder built by the manifest builder, alternating the order per repeat (guarded first, then unguarded first, ...)
so that drift of a shared machine hits both; two untimed warm-up steps first (k-means init, Adam state).
`losses.mmd=0` in both configs: the guard does not depend on the MMD, and its re-encode would only add noise.

Reported per config: mean step time (wall and this thread's CPU time) guarded and unguarded, their ratio with its
standard error over repeats, and the guard's two parts timed alone on the same tensors: the batch check
(`step_admitted`: isfinite over the batch) and the gradient check (`refuse_nonfinite_gradients`: one fused norm
over all gradients). On a loaded machine prefer the CPU-time ratio and the parts' absolute times.

Configurations: `debug` (solver=compression/encodec_mmd_debug, batch 8) and `paper`
(solver=compression/encodec_mmd_32khz, SEANet 64 filters, discriminator, balancer, batch `--batch`).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import typing as tp

import numpy as np
import soundfile as sf
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
from audiocraft_mmd.data import manifest  # noqa: E402
from audiocraft_mmd.solvers.finite_steps import refuse_nonfinite_gradients  # noqa: E402
from audiocraft_mmd.train import build_solver_in_process, main as train_main  # noqa: E402
from bench_step import in_train_stage, load_batches  # noqa: E402

CONFIGS = {'debug': ('compression/encodec_mmd_debug', []),
           'paper': ('compression/encodec_mmd_32khz', [])}


def music_folder(root: str, files: int = 6, seconds: float = 8., rate: int = 32000) -> str:
    """Manifests (built by the builder) of `files` synthetic songs: tones plus noise."""
    rng = np.random.default_rng(0)
    music = os.path.join(root, 'music')
    os.makedirs(music)
    for i in range(files):
        t = np.arange(int(seconds * rate)) / rate
        wav = 0.3 * np.sin(2 * np.pi * 110 * (i + 1) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(os.path.join(music, f'song{i}.wav'), wav, rate, subtype='PCM_16')
    out = os.path.join(root, 'egs')
    manifest.main([music, '--out', out, '--no-dset', '--workers', '1', '--no-progress'])
    return out


def build(config: str, egs: str, batch: tp.Optional[int]):
    solver_name, extra = CONFIGS[config]
    argv = [f'solver={solver_name}', 'device=cpu', 'dataset.num_workers=0', 'losses.mmd=0', *extra,
            *[f'datasource.{s}={egs}/{s}' for s in ('train', 'valid', 'evaluate', 'generate')]]
    if batch:
        argv.append(f'dataset.batch_size={batch}')
    return build_solver_in_process(argv, seed=0)


def set_hooks(solver, on: bool) -> None:
    for handle in solver.gradient_hooks:
        handle.remove()
    solver.gradient_hooks = [opt.register_step_pre_hook(refuse_nonfinite_gradients) for opt in solver._optimizers()] \
        if on else []


def timed_steps(solver, batches: tp.Sequence[torch.Tensor], guarded: bool) -> tp.Tuple[float, float]:
    """Mean (wall, thread CPU) seconds of one step over `batches`."""
    from audiocraft.solvers.compression import CompressionSolver as AudiocraftSolver
    set_hooks(solver, guarded)
    step = solver.run_step if guarded else (lambda i, b, m: AudiocraftSolver.run_step(solver, i, b, m))
    times: tp.List[tp.Tuple[float, float]] = []

    def run() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        for idx, batch in enumerate(batches):
            step(idx, batch, {})
        times.append(((time.perf_counter() - wall) / len(batches), (time.thread_time() - cpu) / len(batches)))
    in_train_stage(solver, run)
    return times[0]


def part_times(solver, batch: torch.Tensor, repeats: int = 50) -> tp.Dict[str, float]:
    """Seconds of the batch check and of the gradient check alone (the gradients of a backward in place)."""
    out: tp.Dict[str, float] = {}

    def mean_time(fn: tp.Callable[[], tp.Any]) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - start) / repeats

    def check_batch() -> bool:
        solver._verdict = (None, True)  # no cached verdict: the check runs
        return solver.step_admitted(batch)

    def run() -> None:
        sum(p.sum() for p in solver.model.parameters()).backward()
        out['batch_check_s'] = mean_time(check_batch)
        out['gradient_check_s'] = mean_time(lambda: refuse_nonfinite_gradients(solver.optimizer, (), {}))
        solver.optimizer.zero_grad()
    in_train_stage(solver, run)
    return out


def bench(config: str, egs: str, steps: int, repeats: int, batch: tp.Optional[int]) -> tp.Dict[str, tp.Any]:
    solver = build(config, egs, batch)
    batches = load_batches(solver, steps)
    in_train_stage(solver, lambda: [solver.run_step(i, b, {}) for i, b in enumerate(batches[:2])])  # warm-up
    runs: tp.Dict[bool, tp.List[tp.Tuple[float, float]]] = {True: [], False: []}
    for repeat in range(repeats):
        for guarded in ((True, False) if repeat % 2 == 0 else (False, True)):
            runs[guarded].append(timed_steps(solver, batches, guarded))
    set_hooks(solver, True)
    result: tp.Dict[str, tp.Any] = {'config': config, 'batch': int(batches[0].shape[0]), 'steps': steps,
                                    'repeats': repeats}
    for kind, col in (('wall', 0), ('cpu', 1)):
        ratios = [g[col] / u[col] for g, u in zip(runs[True], runs[False])]
        result[f'guarded_{kind}_s'] = statistics.mean(r[col] for r in runs[True])
        result[f'unguarded_{kind}_s'] = statistics.mean(r[col] for r in runs[False])
        result[f'ratio_{kind}'] = statistics.mean(ratios)
        result[f'ratio_{kind}_se'] = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else 0.
    result.update(part_times(solver, batches[0]))
    result['parts_share'] = (result['batch_check_s'] + result['gradient_check_s']) / result['unguarded_wall_s']
    return result


def table(results: tp.Sequence[tp.Dict[str, tp.Any]]) -> str:
    lines = ['| config | batch | unguarded step (wall / cpu) | guarded step (wall / cpu) | ratio wall | ratio cpu '
             '| batch check | gradient check | checks / step |', '|' + '---|' * 9]
    for r in results:
        lines.append(f"| {r['config']} | {r['batch']} | {r['unguarded_wall_s'] * 1e3:.1f} / "
                     f"{r['unguarded_cpu_s'] * 1e3:.1f} ms | {r['guarded_wall_s'] * 1e3:.1f} / "
                     f"{r['guarded_cpu_s'] * 1e3:.1f} ms | {r['ratio_wall']:.3f} ± {r['ratio_wall_se']:.3f} | "
                     f"{r['ratio_cpu']:.3f} ± {r['ratio_cpu_se']:.3f} | {r['batch_check_s'] * 1e3:.3f} ms | "
                     f"{r['gradient_check_s'] * 1e3:.3f} ms | {r['parts_share']:.2%} |")
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', default=['debug', 'paper'], choices=sorted(CONFIGS))
    parser.add_argument('--steps', type=int, default=8, help='timed steps per run')
    parser.add_argument('--repeats', type=int, default=5, help='guarded/unguarded runs each')
    parser.add_argument('--batch', type=int, default=2, help='batch size of the paper config (debug keeps 8)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        train_main.dora.dir = os.path.join(tmp, 'outputs')
        egs = music_folder(tmp)
        results = [bench(c, egs, args.steps, args.repeats, args.batch if c == 'paper' else None)
                   for c in args.configs]
    print(table(results))
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(results, out, indent=2)


if __name__ == '__main__':
    main()
