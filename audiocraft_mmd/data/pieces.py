"""Pieces of the data set on disk: the build parameters, one piece's result, where its audio and
sidecar go, atomic writes (a killed build never leaves half a file) and the resume check.
"""
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import tempfile
import typing as tp
import zlib

import numpy as np
import soundfile as sf

from .signal import SAMPLE_RATE

# Bump when the processing changes, so that a resumed build re-renders stale pieces.
BUILDER_VERSION = 1


def seeded_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (never on processing order)."""
    return np.random.default_rng([seed] + [zlib.crc32(k.encode()) for k in keys])


def sanitize(name: str) -> str:
    """Turn a path-like name into a safe file stem."""
    name = re.sub(r'[^A-Za-z0-9_-]+', '-', name)
    return re.sub(r'-+', '-', name).strip('-')


def atomic_write(path: Path, write_fn: tp.Callable[[str], None], suffix: str) -> None:
    """Write through `write_fn(tmp_path)` then rename, so a killed run never leaves a half file."""
    fd, tmp = tempfile.mkstemp(prefix='.' + path.stem + '.', suffix=suffix + '.tmp', dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path: Path, obj: tp.Any) -> None:
    def _write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=2)
    atomic_write(path, _write, '.json')


def write_wav_atomic(path: Path, wav: np.ndarray) -> None:
    atomic_write(path, lambda tmp: sf.write(tmp, wav, SAMPLE_RATE, subtype='PCM_16', format='WAV'), '.wav')


@dataclass
class BuildConfig:
    """Processing parameters that decide the content of a piece (part of the resume check)."""
    seed: int = 0
    max_seconds: float = 90.0  # rendered scores are cropped at a bar line before this (+ ~1 s release tail)
    min_seconds: float = 20.0  # short tunes are repeated (as they would be played) to reach this
    recorded_seconds: float = 120.0  # recorded tracks are cut to one excerpt of at most this

    def variant(self) -> str:
        return f"v{BUILDER_VERSION}-s{self.seed}-{self.max_seconds:g}-{self.min_seconds:g}-{self.recorded_seconds:g}"


@dataclass
class PieceResult:
    """Outcome of processing one job."""
    piece_id: str
    source: str
    origin: str
    ok: bool
    duration: float = 0.0
    path: str = ''
    reason: str = ''
    reused: bool = False


def piece_paths(root: Path, source: str, piece_id: str) -> tp.Tuple[Path, Path]:
    folder = root / 'audio' / source
    return folder / f'{piece_id}.wav', folder / f'{piece_id}.json'


def finished_duration(wav_path: Path, json_path: Path, cfg: BuildConfig) -> tp.Optional[float]:
    """Duration of an already built piece with the same variant, else None."""
    if not (wav_path.exists() and json_path.exists()):
        return None
    try:
        with open(json_path) as f:
            if json.load(f).get('build_variant') != cfg.variant():
                return None
        info = sf.info(str(wav_path))
    except Exception:  # a damaged leftover is simply rebuilt
        return None
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        return None
    return info.frames / SAMPLE_RATE


def save_piece(root: Path, source: str, piece_id: str, wav: np.ndarray, meta: dict,
               cfg: BuildConfig) -> tp.Tuple[str, float]:
    """Write wav then sidecar (the sidecar last: its presence marks the piece as finished)."""
    wav_path, json_path = piece_paths(root, source, piece_id)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    write_wav_atomic(wav_path, wav)
    meta = dict(meta, name=piece_id, source=source, build_variant=cfg.variant())
    write_json_atomic(json_path, meta)
    return str(wav_path.resolve()), len(wav) / SAMPLE_RATE


def job_origin(kind: str, job: tp.Any) -> str:
    """Where a rendered (score, tune number) or recorded job comes from, for reports."""
    if kind == 'rendered':
        return job.path + (f'#X:{job.number}' if job.number is not None else '')
    return job.origin
