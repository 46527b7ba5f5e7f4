"""What a liveness number means: the log-mel correlation and SI-SNR of known degradations of real audio.

A codec's `logmel_corr` of 0.8 says little on its own. This module degrades the evaluation segments in
ways whose damage is easy to picture (white noise at a given SNR, a low-pass filter, mu-law requantization)
and measures them with the same `Liveness` as the solvers and `make reproduce`, so a codec's number can be
placed between them (docs/codec_collapse.md quotes the table for our evaluate split). `--codecs` adds the
rows of trained codecs on the same segments (any compression model, also one without a quantizer):

    python -m audiocraft_mmd.metrics.liveness_calibration [--manifest dataset/mmd_music/egs/evaluate]
        [--codecs //sig/SIG ...]
"""
import argparse
import typing as tp

import torch

from .liveness import Liveness

Degradation = tp.Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def white_noise(snr_db: float) -> Degradation:
    """x [B, C, L] plus white Gaussian noise at `snr_db` below each clip's power."""
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        power = x.flatten(1).pow(2).mean(-1).view(-1, *[1] * (x.dim() - 1))
        return x + torch.randn(x.shape, generator=generator) * (power / 10 ** (snr_db / 10)).sqrt()
    return apply


def low_pass(cutoff_hz: float, sample_rate: int) -> Degradation:
    """x with everything above `cutoff_hz` removed (julius' windowed-sinc filter)."""
    import julius

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return julius.lowpass_filter(x, cutoff_hz / sample_rate)
    return apply


def mu_law(bits: int) -> Degradation:
    """x (in [-1, 1]) mu-law companded, rounded to 2^bits levels and expanded back (G.711 is 8 bits)."""
    mu = 2 ** bits - 1

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        log_mu = torch.log1p(torch.tensor(float(mu)))
        y = torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1.)) / log_mu
        y = torch.round((y + 1) / 2 * mu) / mu * 2 - 1
        return torch.sign(y) * torch.expm1(y.abs() * log_mu) / mu
    return apply


def degradations(sample_rate: int) -> tp.Dict[str, Degradation]:
    return {**{f'white noise, SNR {s} dB': white_noise(s) for s in (10, 20, 30)},
            **{f'low-pass {f} Hz': low_pass(f, sample_rate) for f in (2000, 4000, 8000) if f < sample_rate / 2},
            **{f'mu-law {b} bits': mu_law(b) for b in (4, 6, 8)}}


def _liveness(segments: torch.Tensor, sample_rate: int, reconstruct: tp.Callable[[torch.Tensor], torch.Tensor],
              batch_size: int) -> tp.Dict[str, float]:
    """`Liveness` metrics (codes aside) of `reconstruct(batch)` against each batch of `segments` [N, C, L]."""
    liveness = Liveness(sample_rate, None)
    for batch in segments.split(batch_size):
        liveness.update(batch, reconstruct(batch), None)
    return liveness.compute()


def calibrate(segments: torch.Tensor, sample_rate: int, batch_size: int = 16,
              seed: int = 0) -> tp.Dict[str, tp.Dict[str, float]]:
    """name -> `Liveness` metrics (codes aside) of each degradation of `segments` [N, C, L] against them."""
    results = {}
    for name, degrade in degradations(sample_rate).items():
        generator = torch.Generator().manual_seed(seed)
        results[name] = _liveness(segments, sample_rate, lambda batch: degrade(batch, generator), batch_size)
    return results


@torch.no_grad()
def codec_liveness(model: torch.nn.Module, segments: torch.Tensor, batch_size: int = 16) -> tp.Dict[str, float]:
    """`Liveness` metrics (codes aside) of a compression model's reconstructions of `segments` [N, C, L]."""
    model.eval()
    return _liveness(segments, model.sample_rate, lambda batch: model(batch).x[..., :batch.shape[-1]], batch_size)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> None:
    from ..data.audio_input import load_eval_audio
    from ..environment import DATASET_EGS
    from ..models.loaders import load_compression_model
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--manifest', default=str(DATASET_EGS / 'evaluate'), help="held-out audio (evaluate split)")
    parser.add_argument('--sample-rate', type=int, default=32000)
    parser.add_argument('--max-segments', type=int, default=None)
    parser.add_argument('--codecs', nargs='*', default=[], help="//sig/SIG or checkpoint paths to place in the table")
    args = parser.parse_args(argv)
    audio = load_eval_audio(args.manifest, args.sample_rate, 1, max_segments=args.max_segments)
    print(f"{len(audio.segments)} segments of 1 s from {args.manifest}\n")
    print('| degradation | log-mel corr | SI-SNR dB |\n|---|---|---|')
    for name, metrics in calibrate(audio.segments, args.sample_rate).items():
        print(f"| {name} | {metrics['logmel_corr']:.3f} | {metrics['sisnr_db']:.1f} |")
    for spec in args.codecs:
        model = load_compression_model(spec)
        if model.sample_rate != args.sample_rate or model.channels != 1:
            raise ValueError(f"codec {spec}: {model.sample_rate} Hz, {model.channels} channel(s); the calibration "
                             f"runs at --sample-rate {args.sample_rate}, mono")
        metrics = codec_liveness(model, audio.segments)
        print(f"| codec {spec} | {metrics['logmel_corr']:.3f} | {metrics['sisnr_db']:.1f} |")


if __name__ == '__main__':
    main()
