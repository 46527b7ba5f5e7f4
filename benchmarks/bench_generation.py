"""Generation speed: seconds of compute per second of audio, MusicGenMMD vs audiocraft's MusicGen and
delay vs flatten (unroll) patterns, on the debug size (random weights; speed does not depend on them).

Usage: python benchmarks/bench_generation.py [--duration 1.0] [--batch 2] [--reps 3] [--device cpu]

Rows:
- `audiocraft MusicGen, delay` and `MusicGenMMD, delay`: the same codec and LM objects (same weights)
  wrapped by the two classes, same generation parameters (top-250 sampling, CFG 3): the ratio should be
  ~1 (MusicGenMMD only changes loading and defaults, not the generation path).
- `MusicGenMMD, unroll (flatten)`: an LM of the same size on the flattened pattern: K x more steps
  (paper section 5.3: the joint-distribution baseline is K times slower).

Timing: one untimed warm-up per row, then --reps rounds in which the rows run in turn (so all rows see
the same machine load, this runs on shared machines); the median per row. Steps are the LM forward
passes counted by a hook. The debug codec runs at 25 Hz with K = 4 codebooks of 400 entries.
"""
import argparse
import statistics
import time
import typing as tp

import torch


def _rows(device: str) -> tp.List[tp.Tuple[str, tp.Any]]:
    from audiocraft.models import MusicGen
    from audiocraft_mmd.models.musicgen_mmd import build_debug_model
    torch.manual_seed(0)
    delay = build_debug_model('delay', device=device)
    # audiocraft's MusicGen over the very same modules (max_duration 30 s: its 18 s stride assertion holds)
    reference = MusicGen('audiocraft-debug', delay.compression_model, delay.lm, max_duration=30)
    unroll = build_debug_model('unroll', device=device)
    return [('audiocraft MusicGen, delay', reference), ('MusicGenMMD, delay', delay),
            ('MusicGenMMD, unroll (flatten)', unroll)]


def _generate(model, descriptions: tp.List[str]) -> tp.Tuple[float, int]:
    calls = [0]
    handle = model.lm.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    try:
        start = time.perf_counter()
        wav = model.generate(descriptions)
        elapsed = time.perf_counter() - start
    finally:
        handle.remove()
    assert torch.isfinite(wav).all()
    return elapsed, calls[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, default=1.0, help="seconds of audio per sample")
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = _rows(args.device)
    for _, model in rows:
        model.set_generation_params(use_sampling=True, top_k=250, temperature=1.0, cfg_coef=3.0,
                                    duration=args.duration, extend_stride=18)
    descriptions = ['a Bach chorale played by a string orchestra', 'rock song with drums'][:args.batch]
    descriptions += ['folk tune'] * (args.batch - len(descriptions))
    steps = {}
    for name, model in rows:  # warm-up
        steps[name] = _generate(model, descriptions)[1]
    times: tp.Dict[str, tp.List[float]] = {name: [] for name, _ in rows}
    for _ in range(args.reps):
        for name, model in rows:
            times[name].append(_generate(model, descriptions)[0])
    audio_seconds = args.duration  # per sample; the batch runs in parallel
    frames = int(args.duration * rows[1][1].frame_rate)
    print(f"device={args.device} threads={args.threads} batch={args.batch} duration={args.duration}s "
          f"frames T={frames} K={rows[1][1].lm.num_codebooks} reps={args.reps}")
    print(f"{'model':32s} {'AR steps':>9s} {'s / s of audio':>15s} {'min':>8s} {'max':>8s}")
    medians = {}
    for name, _ in rows:
        medians[name] = statistics.median(times[name]) / audio_seconds
        print(f"{name:32s} {steps[name]:9d} {medians[name]:15.3f} {min(times[name]) / audio_seconds:8.3f} "
              f"{max(times[name]) / audio_seconds:8.3f}")
    ref, ours, flat = (medians[name] for name, _ in rows)
    print(f"ratio MusicGenMMD / audiocraft MusicGen (delay): {ours / ref:.3f}")
    step_ratio = steps[rows[2][0]] / steps[rows[1][0]]
    print(f"ratio flatten / delay (MusicGenMMD): {flat / ours:.2f}  (steps: {step_ratio:.2f})")


if __name__ == '__main__':
    main()
