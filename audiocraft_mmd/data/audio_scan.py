"""Reading an audio file through, once: its peak and where its samples are not finite (NaN or inf).

Only files whose encoding stores floats (WAV/AIFF/CAF `FLOAT` or `DOUBLE`) can hold a NaN: integer PCM (16/24-bit
WAV, FLAC) cannot, and lossy decoders (MP3, Vorbis, AAC) output finite samples. `holds_floats` tells them apart
from the header, so a check that must stay fast (`manifest_check`) scans only those.

A scan reads blocks of `BLOCK_SECONDS` (bounded memory, whatever the file's length) with soundfile, or the whole
file with audiocraft's `audio_read` for formats soundfile does not open (MP3, M4A).

The manifest builder scans every file and writes a marker per manifest (`MARKER_NAME`, one line per file it
found finite: path, size, mtime); the check at solver start trusts a float file whose size and mtime still match
its marker line, and scans the others.
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
import typing as tp

import numpy as np
import soundfile as sf

BLOCK_SECONDS = 30.
FLOAT_SUBTYPES = ('FLOAT', 'DOUBLE')
MAX_SPANS = 5            # spans named in a report (a file with more says how many in all)
MARKER_NAME = 'scanned.jsonl'


@dataclass
class FileScan:
    """What a full read of one file found; times in seconds from the file's start."""
    sample_rate: int
    channels: int
    frames: int
    peak: float = 0.                 # largest finite |sample|
    nonfinite_frames: int = 0
    runs: int = 0                    # runs of bad frames (spans keeps the first MAX_SPANS)
    spans: tp.List[tp.Tuple[float, float]] = field(default_factory=list)  # first MAX_SPANS runs of bad frames

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def nonfinite_reason(self) -> tp.Optional[str]:
        """'non-finite samples at 1.50-4.50 s (...)', or None when every sample is finite."""
        if not self.nonfinite_frames:
            return None
        where = ', '.join(f'{start:.2f}-{end:.2f} s' for start, end in self.spans)
        more = f' and {self.runs - len(self.spans)} more' if self.runs > len(self.spans) else ''
        return (f'non-finite samples (NaN/inf) at {where}{more}: {self.nonfinite_frames} of {self.frames} frames '
                f'({self.nonfinite_frames / self.sample_rate:.2f} s)')


def holds_floats(path: tp.Union[str, Path]) -> bool:
    """True when the file's encoding stores float samples (the only ones that can be NaN or inf)."""
    try:
        return sf.info(str(path)).subtype in FLOAT_SUBTYPES
    except (sf.LibsndfileError, RuntimeError):
        return False  # not a soundfile format: MP3/M4A decoders produce finite samples


def _blocks(path: str) -> tp.Iterator[tp.Tuple[np.ndarray, int, int]]:
    """(block [frames, channels], sample_rate, channels) over the whole file."""
    try:
        handle = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError):
        from audiocraft.data.audio import audio_read
        wav, rate = audio_read(path)
        yield wav.t().numpy(), rate, wav.shape[0]
        return
    with handle:
        for block in handle.blocks(blocksize=int(BLOCK_SECONDS * handle.samplerate), dtype='float32',
                                   always_2d=True):
            yield block, handle.samplerate, handle.channels


def scan_file(path: tp.Union[str, Path]) -> FileScan:
    """Reads the whole file; raises what the decoder raises on a file it cannot decode."""
    scan: tp.Optional[FileScan] = None
    open_span: tp.Optional[int] = None  # first bad frame of a run still open at the end of the previous block
    for block, rate, channels in _blocks(str(path)):
        if scan is None:
            scan = FileScan(rate, channels, 0)
        finite = np.isfinite(block)
        bad = ~finite.all(axis=1)
        if bad.any():
            scan.peak = max(scan.peak, float(np.abs(np.where(finite, block, 0.)).max(initial=0.)))
            open_span = _record_spans(scan, bad, open_span)
        else:
            scan.peak = max(scan.peak, float(np.abs(block).max(initial=0.)))
            open_span = _close_span(scan, open_span, scan.frames)
        scan.frames += len(block)
    if scan is None:
        raise ValueError('no audio frames')
    _close_span(scan, open_span, scan.frames)
    return scan


def _record_spans(scan: FileScan, bad: np.ndarray, open_span: tp.Optional[int]) -> tp.Optional[int]:
    """Adds the runs of `bad` frames of a block starting at `scan.frames`; returns a run left open at its end."""
    scan.nonfinite_frames += int(bad.sum())
    if open_span is not None and not bad[0]:  # the previous block's run ended at the boundary
        open_span = _close_span(scan, open_span, scan.frames)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    for start, end in zip(starts, ends):
        if start == 0 and open_span is not None:
            start = open_span - scan.frames  # the run continues the previous block's
        open_span = None
        if end == len(bad):
            open_span = scan.frames + int(start)
            break
        _close_span(scan, scan.frames + int(start), scan.frames + int(end))
    return open_span


def _close_span(scan: FileScan, start: tp.Optional[int], end: int) -> None:
    """Records the run of bad frames [start, end) (nothing when `start` is None); returns None (no open run)."""
    if start is None:
        return None
    scan.runs += 1
    if len(scan.spans) < MAX_SPANS:
        scan.spans.append((start / scan.sample_rate, end / scan.sample_rate))
    return None


def file_stamp(path: tp.Union[str, Path]) -> tp.Dict[str, tp.Any]:
    """What a marker line records of a file: a changed file no longer matches."""
    stat = os.stat(path)
    return {'path': str(path), 'size': stat.st_size, 'mtime_ns': stat.st_mtime_ns}


def write_marker(folder: Path, paths: tp.Iterable[str]) -> None:
    """The marker of a manifest folder: the files a full scan found finite."""
    with open(folder / MARKER_NAME, 'w') as out:
        for path in paths:
            out.write(json.dumps(file_stamp(path)) + '\n')


def read_marker(folder: Path) -> tp.Dict[str, tp.Dict[str, tp.Any]]:
    """path -> stamp, from a manifest folder's marker (empty when there is none)."""
    marker = folder / MARKER_NAME
    if not marker.exists():
        return {}
    stamps = (json.loads(line) for line in marker.read_text().splitlines() if line.strip())
    return {stamp['path']: stamp for stamp in stamps}


def marked_finite(path: str, marker: tp.Mapping[str, tp.Mapping[str, tp.Any]]) -> bool:
    """True when the marker holds the file with its current size and mtime."""
    stamp = marker.get(path)
    if stamp is None:
        return False
    try:
        return file_stamp(path) == dict(stamp)
    except OSError:
        return False
