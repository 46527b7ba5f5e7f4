"""Measure the dependence between the codebooks of a compression model on a set of audio files.

Usage::

    python -m audiocraft_mmd.metrics.independence --model //sig/SIG --manifest egs/valid/data.jsonl \\
        --delay --max-frames 250000 --out report.json --plot report.png

``--model`` is anything `audiocraft_mmd.models.loaders.load_compression_model` accepts (a Dora
signature ``//sig/SIG``, an exported ``.th`` / ``.bin`` file, a pretrained name). ``--manifest``
is an audiocraft manifest (one JSON per line with ``path``, ``duration``, ``sample_rate``; may be
gzipped) or a folder searched recursively for audio files.

Each file is cut into non-overlapping segments of ``--segment-duration`` seconds, encoded in batches,
and the codes ``[B, K, T]`` are accumulated by `CodebookIndependence`; a shorter last segment is
encoded on its own (no padding: padding would add artificial codes). The delay-aligned variant
(``--delay``) is computed within each segment, so it drops K - 1 frames per segment.

Files that cannot be read are skipped with a warning and listed in the report. Audio at another
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

from .codebook_stats import CodebookIndependence

logger = logging.getLogger(__name__)

AUDIO_EXTS = ['.wav', '.mp3', '.flac', '.ogg', '.m4a']
NOTE = ("Plug-in histogram estimates, biased upwards (bias grows with the number of joint bins and "
        "shrinks with n_frames): compare models only at equal n_frames and cardinality; *_mm are "
        "Miller-Madow corrected values. See audiocraft_mmd.metrics.information.")


class AudioMismatchError(ValueError):
    """The audio cannot be given to the model as it is described (sample rate, channels)."""


class Entry(tp.NamedTuple):
    path: str
    sample_rate: tp.Optional[int]  # declared by the manifest, None for a folder


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m audiocraft_mmd.metrics.independence',
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


def load_entries(manifest: tp.Union[str, Path]) -> tp.List[Entry]:
    """Audio files of a manifest (with their declared sample rate), of an egs folder holding one
    (`data.jsonl[.gz]`, as audiocraft's `datasource` keys point to), or of a folder (recursively)."""
    manifest = Path(manifest)
    egs = [manifest / name for name in ('data.jsonl', 'data.jsonl.gz')] if manifest.is_dir() else []
    manifest = next((path for path in egs if path.exists()), manifest)
    if manifest.is_dir():
        files = sorted(p for p in manifest.rglob('*') if p.suffix.lower() in AUDIO_EXTS and p.is_file())
        return [Entry(str(p), None) for p in files]
    if not manifest.exists():
        raise FileNotFoundError(f"manifest {manifest} does not exist")
    from audiocraft.data.audio_dataset import load_audio_meta
    return [Entry(m.path, int(m.sample_rate) if m.sample_rate else None) for m in load_audio_meta(manifest)]


def prepare_audio(entry: Entry, wav: torch.Tensor, file_rate: int, sample_rate: int, channels: int) -> torch.Tensor:
    """Check ``wav`` [C, T] read from ``entry`` against the manifest and map it to the model's format.

    Returns:
        torch.Tensor: [channels, T'] at ``sample_rate``.
    Raises:
        AudioMismatchError: the manifest's sample rate disagrees with the file, or the channels
            cannot be mapped to the model's.
    """
    import julius
    from audiocraft.data.audio_utils import convert_audio_channels

    if entry.sample_rate is not None and int(file_rate) != entry.sample_rate:
        raise AudioMismatchError(f"{entry.path}: the manifest says sample_rate={entry.sample_rate} "
                                 f"but the file is at {file_rate} Hz")
    try:
        wav = convert_audio_channels(wav, channels)
    except ValueError as exc:
        raise AudioMismatchError(f"{entry.path}: {wav.shape[0]} audio channels cannot be mapped to the "
                                 f"model's {channels} channels") from exc
    if file_rate != sample_rate:
        wav = julius.resample_frac(wav, int(file_rate), int(sample_rate))
    return wav


class Encoder:
    """Batch fixed-length segments, encode them and feed the metric, up to ``max_frames`` frames."""

    def __init__(self, model, metric: CodebookIndependence, batch_size: int, device: str,
                 max_frames: tp.Optional[int] = None):
        self.model = model
        self.metric = metric
        self.batch_size = batch_size
        self.device = device
        self.max_frames = max_frames
        self.n_frames = 0
        self.pending: tp.List[torch.Tensor] = []

    @property
    def done(self) -> bool:
        return self.max_frames is not None and self.n_frames >= self.max_frames

    def add(self, segment: torch.Tensor) -> None:
        """Queue a full-length segment ``[C, L]``."""
        self.pending.append(segment)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.encode(torch.stack(self.pending))
            self.pending = []

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> None:
        """Encode ``[B, C, L]`` audio and accumulate its codes, truncated to ``max_frames`` in total."""
        if self.done:
            return
        codes, _ = self.model.encode(wav.to(self.device))
        B, _, T = codes.shape
        if T == 0:
            return
        if self.max_frames is not None and self.n_frames + B * T > self.max_frames:
            # Keep whole items first, then a prefix of one item, so that n_frames == max_frames exactly.
            remaining = self.max_frames - self.n_frames
            full, rest = divmod(remaining, T)
            if full:
                self._update(codes[:full])
            if rest:
                self._update(codes[full:full + 1, :, :rest])
            return
        self._update(codes)

    def _update(self, codes: torch.Tensor) -> None:
        self.metric.update(codes)
        self.n_frames += codes.shape[0] * codes.shape[2]


def _finite(obj: tp.Any) -> tp.Any:
    """Replace NaN / inf by None so that the report is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def evaluate(args: argparse.Namespace) -> tp.Dict[str, tp.Any]:
    """Run the measurement described by the parsed command line; return the report."""
    from audiocraft.data.audio import audio_read
    from tqdm import tqdm

    model = load_model(args.model, args.device)
    entries = load_entries(args.manifest)
    if not entries:
        raise ValueError(f"no audio file in {args.manifest}")
    num_codebooks, cardinality = int(model.num_codebooks), int(model.cardinality)
    sample_rate, channels = int(model.sample_rate), int(model.channels)
    metric = CodebookIndependence(num_codebooks, cardinality, num_pairs=args.num_pairs, seed=args.seed,
                                  delay=args.delay).to(args.device)
    encoder = Encoder(model, metric, args.batch_size, args.device, args.max_frames)
    segment_length = int(round(args.segment_duration * sample_rate))
    hop = int(math.ceil(sample_rate / float(model.frame_rate)))
    skipped: tp.List[tp.Dict[str, str]] = []
    used = 0

    progress = tqdm(entries, desc='encoding', unit='file', disable=args.no_progress)
    for entry in progress:
        if encoder.done:
            break
        try:
            wav, file_rate = audio_read(entry.path)
        except Exception as exc:  # unreadable or corrupt file: backends raise anything
            logger.warning("skipping unreadable audio file %s: %s", entry.path, exc)
            skipped.append({'path': entry.path, 'error': f'{type(exc).__name__}: {exc}'})
            continue
        # A mismatch with the model or the manifest is an error, not a file to skip silently.
        wav = prepare_audio(entry, wav, file_rate, sample_rate, channels)
        if wav.shape[-1] < hop:
            logger.warning("skipping %s: shorter than one frame", entry.path)
            skipped.append({'path': entry.path, 'error': 'shorter than one frame'})
            continue
        used += 1
        for segment in wav.split(segment_length, dim=-1):
            if segment.shape[-1] == segment_length:
                encoder.add(segment)
            elif segment.shape[-1] >= hop:
                encoder.encode(segment[None])  # shorter tail: its own batch rather than padding
        progress.set_postfix(frames=encoder.n_frames)
    encoder.flush()
    progress.close()

    if encoder.n_frames == 0:
        raise ValueError(f"no frame could be encoded from {args.manifest} ({len(skipped)} files skipped)")
    report = {
        'model': args.model, 'manifest': str(args.manifest), 'device': args.device,
        'sample_rate': sample_rate, 'channels': channels, 'frame_rate': float(model.frame_rate),
        'num_codebooks': num_codebooks, 'cardinality': cardinality,
        'segment_duration': args.segment_duration, 'batch_size': args.batch_size,
        'max_frames': args.max_frames, 'num_pairs': args.num_pairs, 'seed': args.seed, 'with_delay': args.delay,
        'n_files': len(entries), 'n_files_used': used, 'skipped': len(skipped), 'skipped_files': skipped,
        'n_frames': encoder.n_frames, 'note': NOTE,
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
