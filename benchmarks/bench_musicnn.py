"""Speed of the offline music-quality metrics on one CPU core.

Embedding throughput: seconds of 32 kHz audio embedded per second of wall time (x real time;
target >= 20x), split into preprocessing (resampling + log-mel) and the network, for a few batch
sizes. FAD: from 1,000 embeddings per set (statistics + distance, target < 1 s), and the distance
alone from ready statistics.

    python benchmarks/bench_musicnn.py [--seconds 60] [--threads 1]
"""
import argparse
import time

import torch

from audiocraft_mmd.music_quality.fad import FrechetAudioDistanceMetric, frechet_audio_distance
from audiocraft_mmd.music_quality.musicnn.embedding import MusicnnEmbedder, log_mel, prepare_waveform, to_patches


def _best_of(fn, repeats: int = 3) -> float:
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60.)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rate = 32000
    wav = 0.1 * torch.randn(1, int(args.seconds * rate), generator=gen)
    rows = []
    for batch_size in (8, 32):
        embedder = MusicnnEmbedder(batch_size=batch_size)
        embedder(wav[:, :rate * 4], rate)  # warm-up
        total = _best_of(lambda: embedder(wav, rate))
        prep = _best_of(lambda: to_patches(log_mel(prepare_waveform(wav, rate)[None])[0]))
        rows.append((batch_size, total, prep))
    print(f"musicnn embedding of {args.seconds:g} s of {rate} Hz audio, {args.threads} thread(s)")
    print(f"{'batch':>6} {'total s':>8} {'prep s':>7} {'net s':>7} {'x real time':>12}")
    for batch_size, total, prep in rows:
        print(f"{batch_size:>6} {total:>8.3f} {prep:>7.3f} {total - prep:>7.3f} {args.seconds / total:>12.1f}")
    reference = torch.randn(1000, 200, generator=gen)
    generated = torch.randn(1000, 200, generator=gen) * 1.1 + 0.1

    def from_embeddings():
        metric = FrechetAudioDistanceMetric()
        metric.update_embeddings(reference, generated)
        return metric.compute()
    stats = [t for x in (reference, generated) for t in (x.double().mean(0), torch.cov(x.double().T))]
    print(f"\n{'FAD':<40} {'s':>8}")
    print(f"{'1,000 + 1,000 embeddings (metric)':<40} {_best_of(from_embeddings):>8.4f}")
    print(f"{'distance from statistics (200-d)':<40} {_best_of(lambda: frechet_audio_distance(*stats)):>8.4f}")


if __name__ == '__main__':
    main()
