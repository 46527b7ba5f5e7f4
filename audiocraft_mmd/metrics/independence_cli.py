"""Measure the dependence between the codebooks of a compression model on a set of audio files.

Usage::

    python -m audiocraft_mmd.metrics.independence_cli --model //sig/SIG --manifest egs/valid/data.jsonl \\
        --delay --max-frames 250000 --out report.json --plot report.png

``--model`` is anything `audiocraft_mmd.models.loaders.load_compression_model` accepts (a Dora
signature ``//sig/SIG``, an exported ``.th`` / ``.bin`` file, a pretrained name). ``--manifest``
is an audiocraft manifest (one JSON per line with ``path``, ``duration``, ``sample_rate``; may be
gzipped) or a folder searched recursively for audio files.

Each file is cut into non-overlapping segments of ``--segment-duration`` seconds, encoded in batches,
and the codes ``[B, K, T]`` are accumulated by `CodebookIndependence`; a shorter last segment is
encoded on its own (no padding: padding would add artificial codes). The delay-aligned variant
(``--delay``) is computed within each segment, so it drops K - 1 frames per segment.

Files that cannot be read, are shorter than one frame or are near-silent (digital silence, or under
-60 dBFS RMS: silence encodes to a few constant codes and would pull every dependence estimate
down) are skipped with a warning and listed in the report (``skipped_files``, ``near_silent_files``);
files shorter than their manifest's ``duration`` (truncated, e.g. an interrupted copy) are used,
with a warning, and listed in ``truncated_files``. Audio at another
sample rate than the model's is resampled; a channel layout that cannot be mapped to the model's
(see `audiocraft.data.audio_utils.convert_audio_channels`) or a manifest whose ``sample_rate``
disagrees with the file is an error naming the file and both values.

The numbers are biased plug-in estimates: compare models only at equal ``n_frames`` (use
``--max-frames``) and read `audiocraft_mmd.metrics.information` first.
"""

import argparse
import json
import logging
import math
from pathlib import Path
import typing as tp

import torch

from ..data.audio_input import batch_segments, hop_length, load_entries, missing_seconds, prepare_audio
from .codebook_independence import CodebookIndependence, measure

logger = logging.getLogger(__name__)

NOTE = ("Plug-in histogram estimates, biased upwards (bias grows with the number of joint bins and "
        "shrinks with n_frames): compare models only at equal n_frames and cardinality; *_mm are "
        "Miller-Madow corrected values. See audiocraft_mmd.metrics.information.")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m audiocraft_mmd.metrics.independence_cli',
        description='Pairwise total correlation and per-codebook mutual information of the codes of a model.')
    parser.add_argument('--model', required=True, help="//sig/SIG, exported checkpoint or pretrained name")
    parser.add_argument('--manifest', required=True, help="audiocraft manifest (.jsonl[.gz]) or folder of audio")
    parser.add_argument('--delay', action='store_true', help="also report the delay-aligned variant")
    parser.add_argument('--max-frames', type=int, default=None,
                        help="stop after exactly this many (plain) frames; use the same value to compare models")
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--segment-duration', type=float, default=10.0, help="seconds per encoded segment")
    parser.add_argument('--num-pairs', type=int, default=5, help="random couples of codebooks (paper: 5)")
    parser.add_argument('--seed', type=int, default=0, help="seed of the draw of the couples")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', type=Path, default=None, help="JSON report (default: print to stdout)")
    parser.add_argument('--plot', type=Path, default=None, help="PNG figure")
    parser.add_argument('--no-progress', action='store_true', help="disable the progress bar")
    return parser


def load_model(ref: str, device: str):
    """Load a `CompressionModel` with the project's loader (imported lazily: heavy dependencies)."""
    from audiocraft_mmd.models.loaders import load_compression_model
    return load_compression_model(ref, device=device).eval()


def _finite(obj: tp.Any) -> tp.Any:
    """Replace NaN / inf by None so that the report is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _near_silent(wav: torch.Tensor) -> tp.Optional[str]:
    from ..data.signal import silence_reason
    return silence_reason(wav.flatten().numpy())


def _read_waves(entries, sample_rate: int, channels: int, hop: int, counts: tp.Dict[str, tp.Any],
                progress) -> tp.Iterator[torch.Tensor]:
    """The usable audio of each entry, mapped to the model's format. Unreadable, near-silent and
    too-short files are skipped, truncated ones used; each of these is warned about and counted."""
    from audiocraft.data.audio import audio_read
    for entry in entries:
        progress.update()
        try:
            wav, file_rate = audio_read(entry.path)
        except Exception as exc:  # unreadable or corrupt file: backends raise anything
            logger.warning("skipping unreadable audio file %s: %s", entry.path, exc)
            counts['skipped_files'].append({'path': entry.path, 'error': f'{type(exc).__name__}: {exc}'})
            continue
        missing = missing_seconds(entry, wav, file_rate)
        # A mismatch with the model or the manifest is an error, not a file to skip silently.
        wav = prepare_audio(entry, wav, file_rate, sample_rate, channels)
        if wav.shape[-1] < hop:
            logger.warning("skipping %s: shorter than one frame", entry.path)
            counts['skipped_files'].append({'path': entry.path, 'error': 'shorter than one frame'})
            continue
        silence = _near_silent(wav)
        if silence is not None:
            # Silence encodes to a few constant codes: it would pull every dependence estimate down.
            logger.warning("skipping %s: %s", entry.path, silence)
            counts['near_silent_files'].append({'path': entry.path, 'reason': silence})
            continue
        if missing:
            logger.warning("%s is %.2f s shorter than its manifest says (truncated file?); using what it holds",
                           entry.path, missing)
            counts['truncated_files'].append({'path': entry.path, 'missing_seconds': round(missing, 3)})
        counts['used'] += 1
        yield wav


def evaluate(args: argparse.Namespace) -> tp.Dict[str, tp.Any]:
    """Run the measurement described by the parsed command line; return the report."""
    from tqdm import tqdm

    model = load_model(args.model, args.device)
    entries = load_entries(args.manifest)
    if not entries:
        raise ValueError(f"no audio file in {args.manifest}")
    num_codebooks, cardinality = int(model.num_codebooks), int(model.cardinality)
    sample_rate, channels = int(model.sample_rate), int(model.channels)
    metric = CodebookIndependence(num_codebooks, cardinality, num_pairs=args.num_pairs, seed=args.seed,
                                  delay=args.delay).to(args.device)
    segment_length = int(round(args.segment_duration * sample_rate))
    hop = hop_length(sample_rate, model.frame_rate)
    counts: tp.Dict[str, tp.Any] = {'used': 0, 'skipped_files': [], 'near_silent_files': [], 'truncated_files': []}
    with tqdm(total=len(entries), desc='encoding', unit='file', disable=args.no_progress) as progress:
        waves = _read_waves(entries, sample_rate, channels, hop, counts, progress)
        # A shorter last piece of at least one frame is encoded on its own (see data.audio_input).
        batches = batch_segments(waves, segment_length, min_length=hop, batch_size=args.batch_size)
        n_frames = measure(model, batches, metric, max_frames=args.max_frames)

    skipped = counts['skipped_files']
    if n_frames == 0:
        raise ValueError(f"no frame could be encoded from {args.manifest} ({len(skipped)} files skipped, "
                         f"{len(counts['near_silent_files'])} near-silent)")
    report = {
        'model': args.model, 'manifest': str(args.manifest), 'device': args.device,
        'sample_rate': sample_rate, 'channels': channels, 'frame_rate': float(model.frame_rate),
        'num_codebooks': num_codebooks, 'cardinality': cardinality,
        'segment_duration': args.segment_duration, 'batch_size': args.batch_size,
        'max_frames': args.max_frames, 'num_pairs': args.num_pairs, 'seed': args.seed, 'with_delay': args.delay,
        'n_files': len(entries), 'n_files_used': counts['used'], 'skipped': len(skipped), 'skipped_files': skipped,
        'near_silent': len(counts['near_silent_files']), 'near_silent_files': counts['near_silent_files'],
        'truncated': len(counts['truncated_files']), 'truncated_files': counts['truncated_files'],
        'n_frames': n_frames, 'note': NOTE,
    }
    report['metrics'] = metric.compute()
    report.update({k: v for k, v in metric.report().items() if k in ('pairs', 'plain', 'delay')})
    return _finite(report)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> tp.Dict[str, tp.Any]:
    """Command line entry point; returns the report (also written to ``--out`` or stdout)."""
    args = get_parser().parse_args(argv)
    report = evaluate(args)
    text = json.dumps(report, indent=2, allow_nan=False)
    if args.out is None:
        print(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')
        logger.info("report written to %s", args.out)
    if args.plot is not None:
        from .plot import plot_independence
        plot_independence(report, args.plot)
        logger.info("figure written to %s", args.plot)
    tc = report['plain']['tc']
    logger.info("N=%d frames: TC %.4g ± %.2g %% (Miller-Madow %.4g %%)", report['n_frames'],
                tc['mean'], tc['std'], tc['mean_mm'])
    return report


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    main()
