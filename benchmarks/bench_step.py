"""Training-step time of CompressionMMDSolver with the MMD loss off and on, per estimator (same model, same data).

Usage: python benchmarks/bench_step.py [--paper-batch 1] [--paper-num-batches 32] [--repeats 1]
                                       [--debug-repeats 3] [--threads 2] [--profile] [--configs paper debug]
                                       [--estimators exact bank closed_form features features_bank]
                                       [--device cpu]
                                       [--json PATH] [--override mmd.block_size=4096 ...]
(~15 min on 2 idle CPU cores with the defaults, nearly all of it the paper model's 3 x 32 timed steps;
longer when other processes share the cores.)

Estimators: `exact` (Algorithm 1: re-encode of the macro-batch + separate backward every num_batches
steps) and `bank` (`mmd.estimator=bank`: each step's own forward streams against the previous
num_batches - 1 batches, gradient joined to audiocraft's backward); `closed_form` and `features` (issue #29:
the exact path with the solver's loss rebuilt with `mmd.marginals=closed_form` / `features`, the config's other
loss keys kept, switched per macro-batch like the estimator); `features_bank` (the bank path with the features
loss: no re-encode, the estimate over each step's rows and the bank's, O(n M F)). Off and the estimators run in a
rotating order, one macro-batch each, per repeat. With `--device cuda`, times are synchronized wall
times and each mode's peak GPU memory (`torch.cuda.max_memory_allocated`) is reported.

What it measures: the mean wall time of one real training step (`solver.run_step` inside the
train stage, plus the EMA update the train loop does after it), averaged over whole macro-batches:
num_batches consecutive steps, the last of which carries the MMD re-encode + backward, divided by
num_batches. The reference is the same solver with `mmd_weight = 0` (then run_step is exactly
audiocraft's), measured in the same process on the same pre-loaded batches, so data loading is
not timed. Off and on alternate (off/on, then on/off, ...) so that drift of a shared machine
hits both. An untimed warm-up comes first: two steps (the first training forward runs the
codebooks' k-means init; Adam's state, allocator and oneDNN caches fill) and the MMD path once.
On a machine where other processes compete for the cores, wall times follow their load: prefer
`ratio_cpu` with `--threads 1` there (process CPU time of one thread does not count time spent
descheduled; with more threads, OpenMP's spin-waits inflate it) and `mmd_share`.

`mmd_part_s` is the MMD's own cost in the step that completes the macro-batch: from the start of
`macro_batch_mmd` (re-encode of the num_batches batches with the checkpointed encoder, streams,
MMD) to the start of audiocraft's forward, i.e. including the separate MMD backward; it is split
into `fwd_s` (re-encode + loss) and `bwd_s` (backward, with the encoder recomputation).

Configurations: (a) the paper's model, solver=compression/encodec_mmd_32khz (SEANet 64 filters,
4 x 2048 codebooks, msstftd discriminator, balancer, EMA) with the batch reduced to fit a CPU;
(b) the CPU debug config, solver=compression/encodec_mmd_debug (num_batches 4).
`--profile` prints a torch.profiler (CPU) top-10 of one MMD-carrying step of the paper model.
"""
import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import typing as tp

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
from audiocraft_mmd.losses import MMDBank, MMDLoss  # noqa: E402
from audiocraft_mmd.losses.mmd_config import PAPER_WEIGHT, MMDLossConfig  # noqa: E402
from audiocraft_mmd.train import build_solver_in_process, main as train_main  # noqa: E402

TARGET = {'exact': 1.25, 'bank': 1.03}
ESTIMATORS = ('exact', 'bank', 'closed_form', 'features', 'features_bank')
MARGINALS = ('closed_form', 'features')  # the exact path (macro_batch_mmd) with another loss
MACRO_BATCH = ('exact', *MARGINALS)
BANKS = {'bank': 'shuffle', 'features_bank': 'features'}  # the bank path with the loss of these marginals
MMD_WEIGHT = float(PAPER_WEIGHT)  # the paper's weight; the step cost does not depend on its value, only on it being > 0


def build_solver(config: str, data: str, overrides: tp.Sequence[str], seed: int = 0, device: str = 'cpu'):
    """A solver built in-process as `dora run` would, its XP folder in a temporary Dora dir."""
    argv = [f'solver=compression/{config}', f'device={device}', 'dataset.num_workers=0',
            *[f'datasource.{s}={data}/egs/{s}' for s in ('train', 'valid', 'evaluate', 'generate')], *overrides]
    return build_solver_in_process(argv, seed)


def load_batches(solver, count: int) -> tp.List[torch.Tensor]:
    loader = iter(solver.dataloaders['train'])
    return [next(loader) for _ in range(count)]


class MMDMarks:
    """Times the MMD part of a step: start of macro_batch_mmd, its return (loss computed), and the
    start of audiocraft's forward (`solver.model(x)`, which the re-encode never calls: it uses
    `model.encoder`), by which time the separate MMD backward is done."""

    def __init__(self, solver):
        self.marks: tp.Dict[str, float] = {}
        original = solver.macro_batch_mmd

        def timed(batches, with_grad):
            self.marks['start'] = time.perf_counter()
            out = original(batches, with_grad)
            self.marks['loss'] = time.perf_counter()
            return out
        solver.macro_batch_mmd = timed
        solver.model.register_forward_pre_hook(self._forward_starts)

    def _forward_starts(self, module, args):
        if 'loss' in self.marks and 'backward' not in self.marks:
            self.marks['backward'] = time.perf_counter()

    def reset(self):
        self.marks.clear()

    def split(self) -> tp.Tuple[float, float]:
        """(re-encode + loss, backward) seconds of the last MMD step."""
        return self.marks['loss'] - self.marks['start'], self.marks['backward'] - self.marks['loss']


def in_train_stage(solver, fn: tp.Callable[[], None]) -> None:
    """Run `fn` inside the train stage, set up as common_train_valid sets it up."""
    def stage():
        solver.model.train(True)
        solver._macro_batch = []
        solver._clear_bank()
        fn()
    # is_training is `current_stage == 'train'`: steps must run inside run_stage('train', ...).
    solver.run_stage('train', stage)
    # flashy accepts one 'train' log per epoch; forget it so that the next call may log again.
    solver._pending_metrics.pop('train', None)


def train_step(solver, idx: int, batch: torch.Tensor) -> None:
    """One step of the train loop: run_step, then the EMA update the loop does (paper config: ema.use)."""
    solver.run_step(idx, batch, {})
    if solver.ema is not None and (idx + 1) % solver.cfg.optim.ema.updates == 0:
        solver.ema.step()


def bench_losses(solver, estimators: tp.Sequence[str]) -> tp.Dict[str, tp.Tuple[MMDLoss, tp.Optional[MMDBank]]]:
    """{mode: (loss, bank)}: the solver's loss for off / exact, the config's loss with the marginals of each
    `MARGINALS` estimator or bank asked for (its other keys kept), and a bank of that loss for the bank modes."""
    config = MMDLossConfig.parse(solver.cfg.mmd)
    losses: tp.Dict[str, tp.Tuple[MMDLoss, tp.Optional[MMDBank]]] = {
        'off': (solver.mmd_loss, None), 'exact': (solver.mmd_loss, None)}
    for mode in estimators:
        marginals = BANKS.get(mode, mode)
        if mode in MARGINALS or mode in BANKS:
            loss = MMDLoss.from_config(dataclasses.replace(config, marginals=marginals)).to(solver.device)
            losses[mode] = (loss, MMDBank(loss, solver.cfg.mmd.num_batches) if mode in BANKS else None)
    return losses


def use_estimator(solver, mode: str) -> None:
    """MMD `off` (weight 0) or on with estimator `mode` (its loss, and its bank on the bank path)."""
    solver.mmd_weight = 0. if mode == 'off' else MMD_WEIGHT
    solver.mmd_estimator = 'bank' if mode in BANKS else 'exact'
    solver.mmd_loss, bank = solver.bench_losses[mode]
    if bank is not None:
        solver.mmd_bank = bank


def _sync(solver) -> None:
    if str(solver.device).startswith('cuda'):
        torch.cuda.synchronize()


def run_macro_batch(solver, batches, mode: str, marks: MMDMarks) -> dict:
    """Train steps over `batches` (one macro-batch) with the MMD `off` or on with estimator `mode`:
    wall and CPU seconds (and peak GPU memory on CUDA)."""
    use_estimator(solver, mode)
    cuda = str(solver.device).startswith('cuda')
    marks.reset()
    out: dict = {}

    def steps():
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        _sync(solver)
        start, start_cpu = time.perf_counter(), time.process_time()
        out['steps'] = []
        for idx, batch in enumerate(batches):
            train_step(solver, idx, batch)
            _sync(solver)
            out['steps'].append(time.perf_counter() - start - sum(out['steps']))
        out['wall'] = time.perf_counter() - start
        out['cpu'] = time.process_time() - start_cpu
        out['peak_gib'] = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None
    in_train_stage(solver, steps)
    if mode in MACRO_BATCH:
        out['fwd'], out['bwd'] = marks.split()
    return out


def warm_up(solver, batches, marks: MMDMarks, estimators: tp.Sequence[str]) -> None:
    """Untimed: two steps (the first training forward runs the codebooks' k-means init; Adam's state,
    allocator and oneDNN caches fill), then the MMD path (re-encode, loss, backward) once on two batches
    (once per estimator that takes that path) and two bank steps. A full warm-up macro-batch would cost
    num_batches steps for the same shapes."""
    run_macro_batch(solver, batches[:2], 'off', marks)
    for mode in MACRO_BATCH:
        if mode in estimators:
            use_estimator(solver, mode)
            solver.model.train(True)
            (MMD_WEIGHT * solver.macro_batch_mmd(batches[:2], with_grad=True)).backward()
            solver.optimizer.zero_grad()
    for mode in BANKS:
        if mode in estimators:
            run_macro_batch(solver, batches[:2], mode, marks)


def measure(name: str, solver, batches, marks: MMDMarks, repeats: int, estimators: tp.Sequence[str]) -> dict:
    """Warm-up, then `repeats` rounds of off and each estimator in rotating order; per-step means."""
    warm_up(solver, batches, marks, estimators)
    modes = ['off', *estimators]
    rounds: tp.List[tp.Dict[str, dict]] = []
    for r in range(repeats):
        done = {}
        for key in modes[r % len(modes):] + modes[:r % len(modes)]:
            done[key] = run_macro_batch(solver, batches, key, marks)
            print(f"  {name} repeat {r + 1}/{repeats} mmd {key}: {done[key]['wall'] / len(batches):.3f} s/step",
                  flush=True)
        rounds.append(done)
    n = len(batches)
    out: dict = {'off': statistics.mean(p['off']['wall'] for p in rounds) / n,
                 # robust to load bursts of a shared machine: the median of all steps without MMD work
                 'median_off': statistics.median(t for p in rounds for t in p['off']['steps']),
                 'peak_gib': {key: rounds[-1][key]['peak_gib'] for key in modes}}
    for key in estimators:
        out[key] = {
            'step_s': statistics.mean(p[key]['wall'] for p in rounds) / n,
            # medians of per-round ratios: a round ran back to back, under about the same machine load
            'ratio': statistics.median(p[key]['wall'] / p['off']['wall'] for p in rounds),
            'ratio_cpu': statistics.median(p[key]['cpu'] / p['off']['cpu'] for p in rounds),
        }
    for key in MACRO_BATCH:
        if key in estimators:
            out[key]['fwd'] = statistics.mean(p[key]['fwd'] for p in rounds)
            out[key]['bwd'] = statistics.mean(p[key]['bwd'] for p in rounds)
    return out


def print_profile(solver, batches, marks: MMDMarks) -> None:
    """torch.profiler top-10 of the step that completes a macro-batch. The buffer is pre-filled with
    the other num_batches - 1 batches, the state run_step has reached at that step, so the profile
    costs one step rather than a whole macro-batch."""
    use_estimator(solver, 'exact')
    marks.reset()
    activities = [torch.profiler.ProfilerActivity.CPU]

    def last_step():
        solver._macro_batch = [b.to(solver.device) for b in batches[:-1]]
        with torch.profiler.profile(activities=activities) as prof:
            train_step(solver, len(batches) - 1, batches[-1])
        fwd, bwd = marks.split()
        print(f"\nProfile of one MMD-carrying step of the paper model ({len(batches)} batches re-encoded; "
              f"re-encode + loss {fwd:.2f} s, MMD backward {bwd:.2f} s), top 10 by self CPU time:")
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=10))
    in_train_stage(solver, last_step)


def run_config(label: str, config: str, args, batch: int, num_batches: int, repeats: int) -> dict:
    # run_macro_batch switches the estimator (loss and bank) per macro-batch: bench_losses builds them all.
    overrides = [f'dataset.batch_size={batch}', f'mmd.num_batches={num_batches}',
                 f'optim.updates_per_epoch={num_batches}', f'losses.mmd={MMD_WEIGHT}', *args.override]
    solver = build_solver(config, args.data, overrides, device=args.device)
    solver.bench_losses = bench_losses(solver, args.estimators)
    batches = [b.to(solver.device) for b in load_batches(solver, num_batches)]
    print(f"{label} ({config}): batch {batch}, num_batches {num_batches}, repeats {repeats}", flush=True)
    marks = MMDMarks(solver)
    result = measure(label, solver, batches, marks, repeats, args.estimators)
    result.update(config=config, overrides=list(args.override), batch=batch, num_batches=num_batches,
                  repeats=repeats, device=args.device, threads=torch.get_num_threads())
    if args.profile and label == 'paper' and 'exact' in args.estimators:
        print_profile(solver, batches, marks)
    return result


def print_table(results: tp.List[dict]) -> None:
    print("\n| config | device | batch | num_batches | repeats | estimator | step_off_s | step_s | ratio | ratio_cpu "
          "| mmd_part_s | mmd_share | peak_GiB off / on |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for key in ESTIMATORS:
            if key not in r:
                continue
            e = r[key]
            part = e['fwd'] + e['bwd'] if key in MACRO_BATCH else None
            share = f"{part / r['num_batches'] / r['median_off']:.3f}" if part is not None else '-'
            peak = r['peak_gib']
            memory = f"{peak['off']:.2f} / {peak[key]:.2f}" if peak['off'] is not None else '-'
            print(f"| {r['config']} | {r['device']} | {r['batch']} | {r['num_batches']} | {r['repeats']} | {key} | "
                  f"{r['off']:.3f} | {e['step_s']:.3f} | {e['ratio']:.3f} | {e['ratio_cpu']:.3f} | "
                  f"{'-' if part is None else f'{part:.2f}'} | {share} | {memory} |")
    print(f"\ntargets for encodec_mmd_32khz at num_batches 32: {TARGET}")
    print("step_*_s: mean wall seconds per training step over whole macro-batches (mmd off, weight 0 / on, "
          f"weight {MMD_WEIGHT:g}); ratio / ratio_cpu: median over rounds of on / off wall / process CPU time "
          "(CPU time: prefer with --threads 1 on a shared machine); mmd_part_s (exact, closed_form, "
          "features): re-encode + MMD + its backward in the macro-batch's last step; mmd_share: mmd_part_s / "
          "num_batches / (median step time with MMD off), the ratio's expected excess over 1, less sensitive to "
          "load bursts.")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', choices=['paper', 'debug'], default=['paper', 'debug'])
    # Paper: batch 64 over 8 GPUs. On 2 CPU cores one paper-model step at batch 1 takes ~5-8 s, so
    # 2 x 32 timed steps at batch 1 are what fits in ~10 minutes (batch 2 about doubles it).
    parser.add_argument('--paper-batch', type=int, default=1, help="paper model batch (default 1: CPU budget)")
    parser.add_argument('--paper-num-batches', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=1, help="off/on pairs for the paper model")
    parser.add_argument('--debug-batch', type=int, default=8)
    parser.add_argument('--debug-num-batches', type=int, default=4)
    parser.add_argument('--debug-repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--profile', action='store_true')
    parser.add_argument('--estimators', nargs='+', choices=ESTIMATORS, default=['exact', 'bank'])
    parser.add_argument('--device', default='cpu', help="cpu or cuda")
    parser.add_argument('--override', nargs='*', default=[],
                        help="extra hydra overrides for both configs, e.g. mmd.block_size=4096")
    parser.add_argument('--json', help="also write the results to this JSON file")
    parser.add_argument('--data', default=os.path.join(ROOT, 'dataset', 'mmd_music'),
                        help="dataset root with egs/{train,valid,evaluate,generate} (make data)")
    args = parser.parse_args()
    args.data = os.path.abspath(args.data)
    torch.set_num_threads(args.threads)
    # XP folders (logs, config) of the benchmark's solvers go to a throwaway Dora dir.
    dora_dir = tempfile.mkdtemp(prefix='bench_step_')
    train_main.dora.dir = dora_dir
    print(f"threads={torch.get_num_threads()} data={args.data}\nNOTE: paper model at batch {args.paper_batch} "
          f"(1 s segments) and {args.repeats} off/on repeat(s) to fit a ~10 min CPU run (paper: batch 64 over "
          f"8 GPUs, i.e. 8 per rank); load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
          flush=True)
    results = []
    try:
        if 'paper' in args.configs:
            results.append(run_config('paper', 'encodec_mmd_32khz', args, args.paper_batch,
                                      args.paper_num_batches, args.repeats))
        if 'debug' in args.configs:
            results.append(run_config('debug', 'encodec_mmd_debug', args, args.debug_batch,
                                      args.debug_num_batches, args.debug_repeats))
    finally:
        shutil.rmtree(dora_dir, ignore_errors=True)
    print_table(results)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
