"""Audio input of the evaluation tools: which files a manifest names, how a file is checked and
mapped to a model's format, and how it is cut into segments and batched.

The last short piece of a file: `cut_segments(wav, length, min_length)` keeps every full segment
and the shorter tail only when it holds at least `min_length` samples; it is never padded (padding
would add artificial codes). The independence command line keeps every tail of at least one
frame (`min_length` = hop), encoded as its own batch; `make reproduce` keeps full segments only
(`min_length` = length), so that every model is evaluated on the same uniform [N, C, L] batches
(`load_eval_audio`, the evaluation audio of `make reproduce`, `make reproduce-lm` and the liveness calibration).
"""
import dataclasses
import math
from pathlib import Path
import typing as tp

import torch

AUDIO_EXTS = ['.wav', '.mp3', '.flac', '.ogg', '.m4a']
# A file this much shorter than its manifest says is reported as truncated.
TRUNCATION_TOLERANCE_SECONDS = 0.05


class AudioMismatchError(ValueError):
    """The audio cannot be given to the model as it is described (sample rate, channels)."""


class Entry(tp.NamedTuple):
    path: str
    sample_rate: tp.Optional[int]  # declared by the manifest, None for a folder
    duration: tp.Optional[float] = None  # declared by the manifest, None for a folder


def load_entries(manifest: tp.Union[str, Path]) -> tp.List[Entry]:
    """Audio files of a manifest (with their declared sample rate and duration), of an egs folder
    holding one (`data.jsonl[.gz]`, as audiocraft's `datasource` keys point to), or of a folder
    (recursively)."""
    manifest = Path(manifest)
    egs = [manifest / name for name in ('data.jsonl', 'data.jsonl.gz')] if manifest.is_dir() else []
    manifest = next((path for path in egs if path.exists()), manifest)
    if manifest.is_dir():
        files = sorted(p for p in manifest.rglob('*') if p.suffix.lower() in AUDIO_EXTS and p.is_file())
        return [Entry(str(p), None) for p in files]
    if not manifest.exists():
        raise FileNotFoundError(f"manifest {manifest} does not exist")
    from audiocraft.data.audio_dataset import load_audio_meta
    return [Entry(m.path, int(m.sample_rate) if m.sample_rate else None, float(m.duration) if m.duration else None)
            for m in load_audio_meta(manifest)]


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


def missing_seconds(entry: Entry, wav: torch.Tensor, file_rate: int) -> float:
    """How much shorter ``wav`` [C, T] (read at ``file_rate``) is than its manifest says; 0 when it is
    not (or when the manifest gives no duration). Above `TRUNCATION_TOLERANCE_SECONDS`, the file is
    truncated (e.g. an interrupted copy)."""
    if entry.duration is None:
        return 0.
    missing = entry.duration - wav.shape[-1] / float(file_rate)
    return missing if missing > TRUNCATION_TOLERANCE_SECONDS else 0.


def cut_segments(wav: torch.Tensor, length: int, min_length: int) -> tp.List[torch.Tensor]:
    """Non-overlapping segments [C, length] of ``wav`` [C, T], in order, then the tail when it holds at
    least ``min_length`` samples (see the module docstring)."""
    return [segment for segment in wav.split(length, dim=-1)
            if segment.shape[-1] == length or segment.shape[-1] >= min_length]


def batch_segments(waves: tp.Iterable[torch.Tensor], length: int, min_length: int,
                   batch_size: int) -> tp.Iterator[torch.Tensor]:
    """Batches [B, C, length] of the full segments of successive waves [C, T]; a kept shorter tail
    comes as its own batch [1, C, tail] as soon as its wave is cut. Lazy: a wave is read only when
    the batches before it have been consumed."""
    pending: tp.List[torch.Tensor] = []
    for wav in waves:
        for segment in cut_segments(wav, length, min_length):
            if segment.shape[-1] < length:
                yield segment[None]
                continue
            pending.append(segment)
            if len(pending) >= batch_size:
                yield torch.stack(pending)
                pending = []
    if pending:
        yield torch.stack(pending)


def hop_length(sample_rate: int, frame_rate: float) -> int:
    """Samples per frame of a model, rounded up (the shortest audio that gives one frame)."""
    return int(math.ceil(sample_rate / float(frame_rate)))


@dataclasses.dataclass
class EvalAudio:
    """The evaluation audio at one sample rate: whole files [C, T] and shuffled segments [N, C, L];
    the musicnn embedder and the reference FAD embeddings are made once, at the first evaluation that needs them."""
    files: tp.List[torch.Tensor]
    segments: torch.Tensor
    sample_rate: int
    reference_embeddings: tp.Optional[torch.Tensor] = None
    embedder: tp.Optional[tp.Callable[..., tp.Any]] = None


def load_eval_audio(manifest: tp.Union[str, Path], sample_rate: int, channels: int, segment_duration: float = 1.,
                    max_segments: tp.Optional[int] = None, seed: int = 0) -> EvalAudio:
    """The files of `manifest` (audiocraft manifest, egs folder or audio folder, see `load_entries`) and their
    full-length segments of `segment_duration` seconds, at most `max_segments` (the last file cropped where they
    end, so FAD sees the same audio), shuffled with `seed`; tails shorter than a segment are dropped."""
    from audiocraft.data.audio import audio_read
    length = int(round(segment_duration * sample_rate))
    files: tp.List[torch.Tensor] = []
    segments: tp.List[torch.Tensor] = []
    for entry in load_entries(manifest):
        try:
            wav, file_rate = audio_read(entry.path)
        except Exception as exc:  # decoders raise anything on a corrupt file
            raise RuntimeError(f"cannot read evaluation audio {entry.path} (from {manifest}): {exc}") from exc
        wav = prepare_audio(entry, wav, file_rate, sample_rate, channels)  # checks it against the manifest
        cut = cut_segments(wav, length, min_length=length)
        if max_segments is not None:
            cut = cut[:max_segments - len(segments)]
            wav = wav[..., :len(cut) * length]
        segments += cut
        if cut:
            files.append(wav)
        if max_segments is not None and len(segments) >= max_segments:
            break
    if not segments:
        raise ValueError(f"no segment of {segment_duration} s in {manifest}")
    order = torch.randperm(len(segments), generator=torch.Generator().manual_seed(seed))
    return EvalAudio(files, torch.stack(segments)[order], sample_rate)
