"""Offline builder of a small real-music dataset (32 kHz mono) in audiocraft's format.

Two sources, both available without network once the Debian packages are installed:

- ``rendered``: scores from music21's bundled corpus (Bach chorales, Renaissance masses and madrigals,
  classical pieces, folk tunes in multi-tune ABC books parsed tune by tune), converted to MIDI with
  General-MIDI instruments, a tempo factor and a transposition drawn per piece from the seed, and
  synthesized with the FluidSynth CLI, alternating two soundfonts.
- ``recorded``: recorded game music from Debian packages: Wesnoth orchestral tracks and Frets on Fire
  songs (whose stems are mixed down to one piece). Long tracks are cut to one excerpt per track.

Audio is written to ``<root>/audio/<source>/<piece_id>.wav`` (16-bit PCM, 32 kHz, mono) with a
MusicGen-style JSON sidecar ``<piece_id>.json``; manifests go to ``<root>/egs/<split>/data.jsonl``
(one ``audiocraft.data.audio_dataset.AudioMeta`` per line) and a report to ``<root>/summary.json``.

Loudness: every piece is RMS-normalized to ``TARGET_RMS_DBFS`` (-20 dBFS over the whole trimmed
piece), with the gain lowered where needed so the peak stays at or under ``PEAK_CEILING_DBFS`` (-1 dBFS).
This is simple and deterministic; it is not LUFS (no K-weighting), which is fine for codec training.

Budget: ``hours`` is the total. The recorded source is built first, capped to ``recorded_fraction``
(default 35%) of it; the rendered source then fills the rest. Pieces are taken in a deterministic
(seeded) order, and a source stops at the first prefix of that order whose duration reaches its
budget, so the same seed always selects the same pieces whatever the number of workers.

Usage::

    python -m audiocraft_mmd.data.prepare [--root dataset/mmd_music] [--hours 2.0] [--seed 0] \
        [--sources rendered,recorded] [--workers N]
"""

import argparse
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
import json
import logging
import math
import multiprocessing as mp
import os
from pathlib import Path
import re
import shutil
import subprocess
import tempfile
import time
import typing as tp
import zlib

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

SAMPLE_RATE = 32000
# Bump when the processing changes, so that a resumed build re-renders stale pieces.
BUILDER_VERSION = 1
SOURCES = ('rendered', 'recorded')
SPLITS = ('train', 'valid', 'evaluate', 'generate')
SPLIT_FRACTIONS = {'valid': 0.04, 'evaluate': 0.04, 'generate': 0.02}
MIN_PIECES_PER_SPLIT = 2

TARGET_RMS_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
SILENCE_PEAK = 1e-4  # digital silence: nothing louder than -80 dBFS
MIN_RMS_DBFS = -60.0  # a piece quieter than this over its whole length is treated as silent
TRIM_THRESHOLD_DB = -45.0  # frames this far below the loudest frame count as leading/trailing silence
TRIM_PAD_SECONDS = (0.1, 0.5)  # kept before the first / after the last non-silent frame
MIN_PIECE_SECONDS = 8.0

# System requirements: (what, kind, Debian package). `kind` is "binary" or "path".
FLUIDSYNTH = ('fluidsynth', 'binary', 'fluidsynth')
SOUNDFONT_SF2 = ('/usr/share/sounds/sf2/FluidR3_GM.sf2', 'path', 'fluid-soundfont-gm')
SOUNDFONT_SF3 = ('/usr/share/sounds/sf3/MuseScore_General_Lite.sf3', 'path', 'musescore-general-soundfont-small')
WESNOTH_MUSIC = ('/usr/share/games/wesnoth/1.16/data/core/music', 'path', 'wesnoth-1.16-music')
FOF_MULDJORD = ('/usr/share/games/fretsonfire/data/songs/muldjord', 'path', 'fretsonfire-songs-muldjord')
FOF_SECTOID = ('/usr/share/games/fretsonfire/data/songs/sectoid', 'path', 'fretsonfire-songs-sectoid')
REQUIREMENTS = {
    'rendered': [FLUIDSYNTH, SOUNDFONT_SF2, SOUNDFONT_SF3],
    'recorded': [WESNOTH_MUSIC, FOF_MULDJORD, FOF_SECTOID],
}


class MissingDependencyError(RuntimeError):
    """A system binary or data file from a Debian package is missing."""


def check_requirement(target: str, kind: str, package: str,
                      allow_install: tp.Optional[bool] = None) -> str:
    """Make sure a binary (looked up on PATH) or a file/folder exists, else install or explain.

    Args:
        target: binary name (kind="binary") or absolute path (kind="path").
        kind: "binary" or "path".
        package: Debian package providing it.
        allow_install: run `apt-get install -y <package>` when missing. Defaults to True only when
            running as root, since otherwise apt-get cannot work anyway.
    Returns:
        The resolved binary path, or the path itself.
    Raises:
        MissingDependencyError: with the exact `sudo apt-get install -y <package>` line.
    """
    def _find() -> tp.Optional[str]:
        if kind == 'binary':
            return shutil.which(target)
        return target if os.path.exists(target) else None

    found = _find()
    if found is not None:
        return found
    if allow_install is None:
        allow_install = hasattr(os, 'geteuid') and os.geteuid() == 0
    if allow_install:
        logger.warning("Missing %s %s, installing Debian package %s", kind, target, package)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'install', '-y', package], env=env, check=False)
        found = _find()
        if found is not None:
            return found
    what = 'binary' if kind == 'binary' else 'file'
    raise MissingDependencyError(
        f"Missing {what} '{target}' (from Debian package {package}). Install it with:\n"
        f"    sudo apt-get install -y {package}")


def check_requirements(sources: tp.Sequence[str], allow_install: tp.Optional[bool] = None) -> None:
    """Check (or install as root) every system requirement of the given sources."""
    for source in sources:
        for target, kind, package in REQUIREMENTS[source]:
            check_requirement(target, kind, package, allow_install=allow_install)


# ----------------------------------------------------------------------------------------------
# Small helpers.


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (never on processing order)."""
    return np.random.default_rng([seed] + [zlib.crc32(k.encode()) for k in keys])


def _sanitize(name: str) -> str:
    """Turn a path-like name into a safe file stem."""
    name = re.sub(r'[^A-Za-z0-9_-]+', '-', name)
    return re.sub(r'-+', '-', name).strip('-')


def _atomic_write_bytes(path: Path, write_fn: tp.Callable[[str], None], suffix: str) -> None:
    """Write through `write_fn(tmp_path)` then rename, so a killed run never leaves a half file."""
    fd, tmp = tempfile.mkstemp(prefix='.' + path.stem + '.', suffix=suffix + '.tmp', dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json_atomic(path: Path, obj: tp.Any) -> None:
    def _write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=2)
    _atomic_write_bytes(path, _write, '.json')


def _write_wav_atomic(path: Path, wav: np.ndarray) -> None:
    _atomic_write_bytes(path, lambda tmp: sf.write(tmp, wav, SAMPLE_RATE, subtype='PCM_16', format='WAV'), '.wav')


def _db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-12))


def trim_silence(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Cut leading/trailing near-silence (FluidSynth's reverb tail and note-free pickups)."""
    hop = sample_rate // 100
    n = len(wav) // hop
    if n == 0:
        return wav
    frames = wav[:n * hop].reshape(n, hop)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    active = np.nonzero(rms > rms.max() * 10 ** (TRIM_THRESHOLD_DB / 20))[0]
    if len(active) == 0:
        return wav[:0]
    start = max(0, active[0] * hop - int(TRIM_PAD_SECONDS[0] * sample_rate))
    end = min(len(wav), (active[-1] + 1) * hop + int(TRIM_PAD_SECONDS[1] * sample_rate))
    return wav[start:end]


def normalize_loudness(wav: np.ndarray) -> np.ndarray:
    """RMS-normalize to TARGET_RMS_DBFS, lowering the gain if the peak would pass PEAK_CEILING_DBFS."""
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    peak = float(np.abs(wav).max())
    gain = 10 ** (TARGET_RMS_DBFS / 20) / max(rms, 1e-12)
    gain = min(gain, 10 ** (PEAK_CEILING_DBFS / 20) / max(peak, 1e-12))
    return (wav * gain).astype(np.float32)


def silence_reason(wav: np.ndarray) -> tp.Optional[str]:
    """Why `wav` is unusable as music (None when it is fine)."""
    if len(wav) == 0 or float(np.abs(wav).max()) < SILENCE_PEAK:
        return 'digital silence'
    rms_db = _db(float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))))
    if rms_db < MIN_RMS_DBFS:
        return f'near silence ({rms_db:.1f} dBFS RMS)'
    return None


def resample(wav: np.ndarray, sample_rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (exact rational ratio, e.g. 44100 -> 32000 is 320/441)."""
    if sample_rate == target:
        return wav.astype(np.float32)
    from scipy.signal import resample_poly  # lazy: scipy is slow to import
    g = math.gcd(sample_rate, target)
    return resample_poly(wav, target // g, sample_rate // g).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Jobs and results.


@dataclass
class ScoreJob:
    """One score to render: a file of the music21 corpus (or any score file), and a tune number
    for multi-tune ABC books."""
    piece_id: str
    path: str
    number: tp.Optional[int] = None
    collection: str = 'misc'


@dataclass
class RecordedJob:
    """One recorded piece: one or several stems mixed down (Frets on Fire songs are stems)."""
    piece_id: str
    stems: tp.List[str]
    title: str
    artist: str
    genre: str
    origin: str
    instrument: str = 'mixed'
    keywords: tp.List[str] = field(default_factory=list)
    description: str = ''


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


def _piece_paths(root: Path, source: str, piece_id: str) -> tp.Tuple[Path, Path]:
    folder = root / 'audio' / source
    return folder / f'{piece_id}.wav', folder / f'{piece_id}.json'


def _finished(wav_path: Path, json_path: Path, cfg: BuildConfig) -> tp.Optional[float]:
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


def _save_piece(root: Path, source: str, piece_id: str, wav: np.ndarray, meta: dict,
                cfg: BuildConfig) -> tp.Tuple[str, float]:
    """Write wav then sidecar (the sidecar last: its presence marks the piece as finished)."""
    wav_path, json_path = _piece_paths(root, source, piece_id)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    _write_wav_atomic(wav_path, wav)
    meta = dict(meta, name=piece_id, source=source, build_variant=cfg.variant())
    _write_json_atomic(json_path, meta)
    return str(wav_path.resolve()), len(wav) / SAMPLE_RATE


# ----------------------------------------------------------------------------------------------
# Rendered source: music21 corpus -> MIDI -> FluidSynth.

# Corpus folders that hold test/demo material rather than music.
EXCLUDED_DIRS = {'demos', 'theoryExercises'}
EXCLUDED_FILES = re.compile(r'^test.*\.abc$')  # essenFolksong/test*.abc are parser test books
SCORE_EXTS = {'.mxl', '.xml', '.musicxml', '.krn', '.abc'}  # .rntxt are harmonic analyses, not scores

# collection -> (genre, default artist, phrase used in the description, weighting group)
COLLECTIONS = {
    'bach': ('baroque', 'Johann Sebastian Bach', 'a Bach chorale', 'chorale'),
    'palestrina': ('renaissance', 'Giovanni Pierluigi da Palestrina',
                   'a Renaissance mass movement by Palestrina', 'early'),
    'monteverdi': ('renaissance', 'Claudio Monteverdi', 'a Monteverdi madrigal', 'early'),
    'josquin': ('renaissance', 'Josquin des Prez', 'a Renaissance motet by Josquin', 'early'),
    'lusitano': ('renaissance', 'Vicente Lusitano', 'a Renaissance motet', 'early'),
    'trecento': ('medieval', 'Anonymous', 'a medieval Italian song', 'early'),
    'ciconia': ('medieval', 'Johannes Ciconia', 'a medieval song by Ciconia', 'early'),
    'luca': ('medieval', 'Anonymous', 'a medieval song', 'early'),
    'essenFolksong': ('folk', 'Traditional', 'a traditional folk song', 'folk'),
    'ryansMammoth': ('folk', 'Traditional', 'a traditional fiddle tune', 'folk'),
    'oneills1850': ('folk', 'Traditional', 'an Irish folk tune', 'folk'),
    'airdsAirs': ('folk', 'Traditional', 'a Scottish folk air', 'folk'),
    'miscFolk': ('folk', 'Traditional', 'a folk tune', 'folk'),
    'nottingham-dataset': ('folk', 'Traditional', 'an English folk dance tune', 'folk'),
    'leadSheet': ('popular', 'Unknown', 'an old popular song', 'classical'),
    'joplin': ('ragtime', 'Scott Joplin', 'a ragtime piece by Scott Joplin', 'classical'),
}
# Share of each group in the rendered order: the corpus is dominated by Palestrina and folk tunes,
# weighting keeps chorales and classical pieces well represented in a small build.
GROUP_WEIGHTS = {'chorale': 0.3, 'folk': 0.3, 'early': 0.2, 'classical': 0.2}
DEFAULT_BPM = {'chorale': 84.0, 'folk': 110.0, 'early': 100.0, 'classical': 100.0}
TEMPO_RANGE = (0.8, 1.25)
TRANSPOSE_RANGE = (-5, 5)

# Ensembles: (description, GM programs (0-based) from the highest to the lowest part).
ENSEMBLES = {
    'piano': ('a piano', [0]),
    'bright piano': ('a bright piano', [1]),
    'harpsichord': ('a harpsichord', [6]),
    'organ': ('a church organ', [19]),
    'strings': ('a string quartet', [40, 40, 41, 42, 43]),
    'string orchestra': ('a string orchestra', [48, 48, 49]),
    'woodwinds': ('a woodwind ensemble', [73, 68, 71, 70]),
    'brass': ('a brass ensemble', [56, 60, 57, 58]),
    'choir': ('a choir', [52, 52, 53]),
    'guitars': ('acoustic guitars', [24, 25]),
    'chamber': ('a chamber ensemble', [73, 40, 71, 42]),
}
SOLOS = {
    'fiddle': ('a fiddle', [110]),
    'violin': ('a violin', [40]),
    'flute': ('a flute', [73]),
    'recorder': ('a recorder', [74]),
    'whistle': ('a tin whistle', [78]),
    'accordion': ('an accordion', [21]),
    'oboe': ('an oboe', [68]),
    'clarinet': ('a clarinet', [71]),
    'piano': ('a piano', [0]),
    'nylon guitar': ('a nylon-string guitar', [24]),
    'harp': ('a harp', [46]),
    'banjo': ('a banjo', [105]),
}
GM_NAMES = {
    0: 'piano', 1: 'bright piano', 6: 'harpsichord', 19: 'church organ', 21: 'accordion', 24: 'nylon guitar',
    25: 'steel guitar', 40: 'violin', 41: 'viola', 42: 'cello', 43: 'contrabass', 46: 'harp', 48: 'strings',
    49: 'slow strings', 52: 'choir aahs', 53: 'voice oohs', 56: 'trumpet', 57: 'trombone', 58: 'tuba',
    60: 'french horn', 68: 'oboe', 70: 'bassoon', 71: 'clarinet', 73: 'flute', 74: 'recorder', 78: 'whistle',
    105: 'banjo', 110: 'fiddle',
}
PITCH_NAMES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B']
# Krumhansl-Kessler key profiles.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _abc_tune_numbers(path: str) -> tp.List[int]:
    """Reference numbers (X: fields) of the tunes of an ABC file, read as text (cheap)."""
    numbers = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            m = re.match(r'^X:\s*(\d+)', line)
            if m:
                numbers.append(int(m.group(1)))
    return numbers


def score_jobs_from_paths(paths: tp.Sequence[str], corpus_root: tp.Optional[str] = None) -> tp.List[ScoreJob]:
    """One job per score, or per tune for multi-tune ABC files. Unreadable files still yield a job
    (it fails and is reported when processed)."""
    jobs = []
    seen: tp.Set[str] = set()
    for path in paths:
        path = str(path)
        rel = os.path.relpath(path, corpus_root) if corpus_root else os.path.basename(path)
        parts = Path(rel).parts
        collection = parts[0] if len(parts) > 1 else 'misc'
        base = _sanitize(os.path.splitext(rel)[0].replace(os.sep, '_'))
        if base in seen:  # e.g. x.mxl and x.krn side by side
            base = _sanitize(rel.replace(os.sep, '_'))
        seen.add(base)
        numbers: tp.List[int] = []
        if path.lower().endswith('.abc'):
            try:
                numbers = _abc_tune_numbers(path)
            except OSError:
                numbers = []
        if len(set(numbers)) > 1:
            jobs += [ScoreJob(f'{base}_x{n}', path, n, collection) for n in sorted(set(numbers))]
        else:
            jobs.append(ScoreJob(base, path, None, collection))
    return jobs


def list_corpus_jobs() -> tp.List[ScoreJob]:
    """All renderable scores of music21's corpus, multi-tune ABC books split into tunes."""
    from music21 import common, corpus
    root = str(common.getCorpusFilePath())
    paths = []
    for p in corpus.getPaths():
        rel = Path(os.path.relpath(str(p), root))
        if rel.parts[0] in EXCLUDED_DIRS or rel.suffix.lower() not in SCORE_EXTS:
            continue
        if EXCLUDED_FILES.match(rel.name):
            continue
        paths.append(str(p))
    return score_jobs_from_paths(sorted(paths), corpus_root=root)


def _group(collection: str) -> str:
    return COLLECTIONS.get(collection, ('', '', '', 'classical'))[3]


def order_score_jobs(jobs: tp.Sequence[ScoreJob], seed: int) -> tp.List[ScoreJob]:
    """Deterministic order: shuffle each weighting group, then interleave groups by GROUP_WEIGHTS."""
    rng = _rng(seed, 'order-rendered')
    groups: tp.Dict[str, tp.List[ScoreJob]] = {}
    for job in sorted(jobs, key=lambda j: j.piece_id):
        groups.setdefault(_group(job.collection), []).append(job)
    for name in sorted(groups):
        perm = rng.permutation(len(groups[name]))
        groups[name] = [groups[name][i] for i in perm]
    ordered: tp.List[ScoreJob] = []
    cursors = {name: 0 for name in groups}
    while True:
        alive = [g for g in sorted(groups) if cursors[g] < len(groups[g])]
        if not alive:
            return ordered
        weights = np.array([GROUP_WEIGHTS.get(g, 0.1) for g in alive])
        g = alive[rng.choice(len(alive), p=weights / weights.sum())]
        ordered.append(groups[g][cursors[g]])
        cursors[g] += 1


def _clean_text(text: tp.Any) -> str:
    text = re.sub(r'\s*\(.*?\)\s*', ' ', str(text or ''))  # drop life dates like "(1291 - 1361)"
    return re.sub(r'\s+', ' ', text).strip()


def _extract_notes(part: tp.Any) -> tp.List[tp.Tuple[float, float, int, tp.Optional[int]]]:
    """(start, duration, midi pitch, velocity) in quarter lengths, ties merged, chord symbols skipped."""
    from music21 import harmony
    notes = []
    open_ties: tp.Dict[int, int] = {}  # midi pitch -> index of the note a tie continues
    for n in part.flatten().notes:
        if isinstance(n, harmony.Harmony) or n.duration.quarterLength <= 0:
            continue
        start, dur = float(n.offset), float(n.duration.quarterLength)
        velocity = n.volume.velocity if n.hasVolumeInformation() else None  # explicit dynamics only
        for p in getattr(n, 'pitches', ()):
            midi = int(round(p.ps))
            tie = getattr(n, 'tie', None)
            tie_type = tie.type if tie is not None else None
            if tie_type in ('stop', 'continue') and midi in open_ties:
                i = open_ties[midi]
                s, _, m, v = notes[i]
                notes[i] = (s, start + dur - s, m, v)
                if tie_type == 'stop':
                    del open_ties[midi]
                continue
            notes.append((start, dur, midi, velocity))
            if tie_type == 'start':
                open_ties[midi] = len(notes) - 1
    return notes


def _first_bpm(score: tp.Any) -> tp.Optional[float]:
    from music21 import tempo
    for mm in score.recurse().getElementsByClass(tempo.MetronomeMark):
        bpm = mm.getQuarterBPM()
        if bpm:
            return float(bpm)
    return None


def _bar_starts(score: tp.Any) -> tp.List[float]:
    from music21 import stream
    parts = list(score.parts) if hasattr(score, 'parts') and len(score.parts) else [score]
    return sorted({float(m.offset) for m in parts[0].getElementsByClass(stream.Measure)})


def estimate_key(notes: tp.Sequence[tp.Tuple[float, float, int, tp.Any]]) -> tp.Optional[str]:
    """Krumhansl-Schmuckler key estimate from a duration-weighted pitch-class histogram."""
    hist = np.zeros(12)
    for _, dur, midi, _ in notes:
        hist[midi % 12] += dur
    if hist.sum() == 0:
        return None
    best, name = -2.0, None
    for tonic in range(12):
        for mode, profile in (('major', MAJOR_PROFILE), ('minor', MINOR_PROFILE)):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            if r > best:
                best, name = r, f'{PITCH_NAMES[tonic]} {mode}'
    return name


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(path: str, tracks: tp.Sequence[tp.Tuple[int, tp.Sequence[tp.Tuple[float, float, int, int]]]],
               bpm: float, ticks_per_quarter: int = 480) -> None:
    """Write a format-1 Standard MIDI File: one track per part, constant tempo.

    We write MIDI ourselves rather than with music21's exporter so that program, channel, tempo and
    transposition are fully controlled (music21 takes them from instrument objects of the score).

    Args:
        tracks: (GM program, notes) with notes as (start_ql, dur_ql, midi_pitch, velocity).
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return kind + len(data).to_bytes(4, 'big') + data

    def track_bytes(events: tp.List[tp.Tuple[int, int, bytes]]) -> bytes:
        events.sort(key=lambda e: (e[0], e[1]))
        data, last = b'', 0
        for tick, _, msg in events:
            data += _vlq(tick - last) + msg
            last = tick
        return chunk(b'MTrk', data + b'\x00\xff\x2f\x00')

    usec = int(round(60_000_000 / bpm))
    out = [track_bytes([(0, 0, b'\xff\x51\x03' + usec.to_bytes(3, 'big'))])]
    channels = [c for c in range(16) if c != 9]  # channel 10 is percussion in GM
    for i, (program, notes) in enumerate(tracks):
        ch = channels[i % len(channels)]
        events = [(0, 0, bytes([0xC0 | ch, program])), (0, 0, bytes([0xB0 | ch, 7, 100]))]
        for start, dur, midi, vel in notes:
            on = int(round(start * ticks_per_quarter))
            off = max(on + 1, int(round((start + dur) * ticks_per_quarter)))
            midi = min(127, max(0, midi))
            # priority 1 = note-off before note-on at the same tick, so repeated notes re-attack.
            events.append((on, 2, bytes([0x90 | ch, midi, min(127, max(1, vel))])))
            events.append((off, 1, bytes([0x80 | ch, midi, 0])))
        out.append(track_bytes(events))
    header = chunk(b'MThd', (1).to_bytes(2, 'big') + len(out).to_bytes(2, 'big') + ticks_per_quarter.to_bytes(2, 'big'))
    with open(path, 'wb') as f:
        f.write(header + b''.join(out))


def render_midi(midi_path: str, soundfont: str, timeout: float = 300.0) -> np.ndarray:
    """Render with the FluidSynth CLI to float32 (no clipping whatever the gain), return mono audio.

    Dynamic sample loading only decodes the samples the MIDI uses, which makes the compressed .sf3
    soundfont about as fast to load as the .sf2 one.
    """
    fluidsynth = check_requirement(*FLUIDSYNTH)
    with tempfile.TemporaryDirectory(prefix='mmd_fs_') as tmp:
        raw = os.path.join(tmp, 'out.raw')
        cmd = [fluidsynth, '-ni', '-q', '-o', 'synth.dynamic-sample-loading=1', '-F', raw, '-T', 'raw',
               '-O', 'float', '-r', str(SAMPLE_RATE), soundfont, midi_path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(raw):
            raise RuntimeError(f'fluidsynth failed ({proc.returncode}): {proc.stderr.strip()[-300:]}')
        stereo = np.fromfile(raw, dtype='<f4')
    stereo = stereo[:len(stereo) // 2 * 2].reshape(-1, 2)
    return stereo.mean(axis=1).astype(np.float32)


def _parse_score(job: ScoreJob) -> tp.Any:
    from music21 import converter, stream
    score = converter.parseFile(job.path, number=job.number, forceSource=True)
    if isinstance(score, stream.Opus):
        scores = list(score.scores)
        if not scores:
            raise ValueError('empty ABC/opus file')
        score = scores[0]
    return score


def _plan_score(job: ScoreJob, score: tp.Any, cfg: BuildConfig) -> tp.Tuple[list, float, dict]:
    """Turn a parsed score into MIDI tracks + tempo + metadata, with per-piece random choices."""
    rng = _rng(cfg.seed, 'rendered', job.piece_id)
    group = _group(job.collection)
    parts = list(score.parts) if hasattr(score, 'parts') and len(score.parts) else [score]
    tracks = [n for n in (_extract_notes(p) for p in parts) if n]
    if not tracks:
        raise ValueError('no notes in score')
    base_bpm = float(np.clip(_first_bpm(score) or DEFAULT_BPM[group], 40, 200))
    bpm = float(round(base_bpm * rng.uniform(*TEMPO_RANGE)))
    transpose = int(rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1))
    sec_per_ql = 60.0 / bpm

    # Crop at the last bar line before max_seconds: long scores (masses, sonata movements) would
    # otherwise give pieces of many minutes and dominate the hour budget.
    end = max(s + d for tr in tracks for s, d, _, _ in tr)
    limit = cfg.max_seconds / sec_per_ql
    if end > limit:
        bars = [b for b in _bar_starts(score) if 0 < b <= limit]
        cut = bars[-1] if bars else limit
        tracks = [[(s, min(d, cut - s), m, v) for s, d, m, v in tr if s < cut] for tr in tracks]
        tracks = [tr for tr in tracks if tr]
        end = cut
    # Repeat short tunes (folk tunes are played with repeats) so pieces last at least min_seconds.
    min_seconds = min(cfg.min_seconds, cfg.max_seconds)
    repeats = min(4, max(1, math.ceil(min_seconds / (end * sec_per_ql))))
    tracks = [[(s + r * end, d, m, v) for r in range(repeats) for s, d, m, v in tr] for tr in tracks]

    # Instruments: one ensemble per piece, programs given from the highest to the lowest part.
    table = SOLOS if len(tracks) == 1 else ENSEMBLES
    family = sorted(table)[int(rng.integers(len(table)))]
    family_desc, programs = table[family]
    order = sorted(range(len(tracks)), key=lambda i: -np.mean([m for _, _, m, _ in tracks[i]]))
    midi_tracks = []
    for rank, i in enumerate(order):
        k = round(rank * (len(programs) - 1) / max(1, len(tracks) - 1))
        base_vel = int(rng.integers(72, 101))
        jitter = rng.integers(-6, 7, size=len(tracks[i]))
        notes = [(s, d, m + transpose, v if v else base_vel + int(j))
                 for (s, d, m, v), j in zip(tracks[i], jitter)]
        midi_tracks.append((programs[k], notes))
    all_notes = [n for _, notes in midi_tracks for n in notes]

    genre, default_artist, phrase, _ = COLLECTIONS.get(job.collection, ('classical', '', '', 'classical'))
    md = score.metadata
    artist = _clean_text(getattr(md, 'composer', None) if md else None) or default_artist or job.collection.title()
    title = _clean_text((getattr(md, 'title', None) or getattr(md, 'movementName', None)) if md else None)
    if not title or title == Path(job.path).name:  # music21 falls back to the file name
        title = re.sub(r'^bwv', 'BWV ', Path(job.path).stem)
    if not phrase:
        phrase = f'a classical piece by {artist}'
    key = estimate_key(all_notes)
    instruments = sorted({GM_NAMES.get(p, str(p)) for p, _ in midi_tracks})
    desc = f'{phrase} played by {family_desc} at {bpm:g} bpm' + (f' in {key}' if key else '')
    meta = {
        'title': title, 'artist': artist, 'genre': genre, 'key': key, 'bpm': bpm, 'moods': [],
        'keywords': [genre, family] + [i for i in instruments if i != family] + [job.collection],
        'description': desc, 'instrument': family,
        'origin': job.path + (f'#X:{job.number}' if job.number is not None else ''),
        'render': {'tempo_factor': round(bpm / base_bpm, 4), 'transpose': transpose, 'programs':
                   [p for p, _ in midi_tracks], 'repeats': repeats},
    }
    return midi_tracks, bpm, meta


def process_score(job: ScoreJob, root: str, cfg: BuildConfig) -> PieceResult:
    """Parse, plan, synthesize and save one score (no resume check: see `_process`).

    Never raises on bad input: failures come back as results.
    """
    origin = _origin('rendered', job)
    try:
        score = _parse_score(job)
        tracks, bpm, meta = _plan_score(job, score, cfg)
        rng = _rng(cfg.seed, 'soundfont', job.piece_id)
        soundfont = (SOUNDFONT_SF2, SOUNDFONT_SF3)[int(rng.integers(2))]
        sf_path = check_requirement(*soundfont)
        meta['render']['soundfont'] = os.path.basename(sf_path)
        with tempfile.TemporaryDirectory(prefix='mmd_mid_') as tmp:
            midi_path = os.path.join(tmp, 'piece.mid')
            write_midi(midi_path, tracks, bpm)
            wav = render_midi(midi_path, sf_path)
        wav = trim_silence(wav)
        reason = silence_reason(wav)
        if reason is None and len(wav) < MIN_PIECE_SECONDS * SAMPLE_RATE:
            reason = f'too short ({len(wav) / SAMPLE_RATE:.1f} s)'
        if reason is not None:
            return PieceResult(job.piece_id, 'rendered', origin, False, reason=reason)
        path, duration = _save_piece(Path(root), 'rendered', job.piece_id, normalize_loudness(wav), meta, cfg)
        return PieceResult(job.piece_id, 'rendered', origin, True, duration, path)
    except MissingDependencyError:
        raise
    except Exception as exc:  # corrupt/unsupported score: skip and report
        return PieceResult(job.piece_id, 'rendered', origin, False, reason=f'{type(exc).__name__}: {exc}'[:300])


# ----------------------------------------------------------------------------------------------
# Recorded source: Debian game-music packages.


def _read_ini(path: Path) -> tp.Dict[str, str]:
    out = {}
    try:
        for line in path.read_text(errors='replace').splitlines():
            if '=' in line:
                k, v = line.split('=', 1)
                out[k.strip().lower()] = v.strip()
    except OSError:
        pass
    return out


def list_recorded_jobs() -> tp.List[RecordedJob]:
    """Wesnoth tracks (one piece each) and Frets on Fire songs (stems mixed down to one piece)."""
    jobs = []
    for ogg in sorted(Path(WESNOTH_MUSIC[0]).glob('*.ogg')):
        title = ogg.stem.replace('_', ' ').replace('-', ' ').title()
        jobs.append(RecordedJob(
            f'wesnoth_{_sanitize(ogg.stem)}', [str(ogg)], title, 'Battle for Wesnoth composers', 'orchestral',
            f'{WESNOTH_MUSIC[2]}:{ogg}', 'orchestra', ['orchestral', 'soundtrack', 'fantasy', 'game music'],
            f'an orchestral fantasy soundtrack piece, "{title}", from the game Battle for Wesnoth'))
    for pack in (FOF_MULDJORD, FOF_SECTOID):
        for song in sorted(p for p in Path(pack[0]).iterdir() if p.is_dir()):
            stems = sorted(str(s) for s in song.glob('*.ogg'))
            if not stems:
                continue
            ini = _read_ini(song / 'song.ini')
            artist = re.sub(r'^Composed and performed by\s+', '', ini.get('artist', '')) or Path(pack[0]).name
            artist = artist.split(' - ')[0].strip()  # "Muldjord - www.muldjord.com"
            title = ini.get('name', song.name)
            jobs.append(RecordedJob(
                f'fretsonfire_{_sanitize(Path(pack[0]).name)}_{_sanitize(song.name)}', stems,
                title, artist, 'rock', f'{pack[2]}:{song}', 'electric guitar, bass, drums',
                ['rock', 'metal', 'electric guitar', 'drums', 'game music'],
                f'a heavy rock song, "{title}" by {artist}, with electric guitars, bass and drums'))
    return jobs


def decode_audio(path: str) -> tp.Tuple[np.ndarray, int]:
    """Decode to mono float32. soundfile first; ffmpeg as a fallback for what libsndfile can't read."""
    try:
        wav, sr = sf.read(path, dtype='float32', always_2d=True)
        return wav.mean(axis=1), int(sr)
    except Exception as sf_exc:
        ffmpeg = shutil.which('ffmpeg')
        if ffmpeg is None:
            raise sf_exc
        proc = subprocess.run([ffmpeg, '-v', 'error', '-nostdin', '-i', path, '-ac', '1', '-ar', str(SAMPLE_RATE),
                               '-f', 'f32le', '-'], capture_output=True, timeout=300)
        if proc.returncode != 0 or not proc.stdout:
            raise RuntimeError(f'cannot decode {path}: {sf_exc}; ffmpeg: {proc.stderr.decode()[-200:]}')
        return np.frombuffer(proc.stdout, dtype='<f4').copy(), SAMPLE_RATE


def process_recorded(job: RecordedJob, root: str, cfg: BuildConfig) -> PieceResult:
    """Decode, mix stems, cut one excerpt, resample, normalize and save (no resume check: see `_process`).

    Never raises on bad input: failures come back as results.
    """
    try:
        decoded = [decode_audio(stem) for stem in job.stems]
        rates = {sr for _, sr in decoded}
        # Work at the native rate and resample only the excerpt (5x less work on long tracks).
        sr = rates.pop() if len(rates) == 1 else SAMPLE_RATE
        stems = [w if s == sr else resample(w, s, sr) for w, s in decoded]
        n = max(len(w) for w in stems)
        mix = sum(np.pad(w, (0, n - len(w))) for w in stems)  # stems can differ by a few samples
        mix = trim_silence(np.asarray(mix, dtype=np.float32), sr)
        reason = silence_reason(mix)
        if reason is None and len(mix) < MIN_PIECE_SECONDS * sr:
            reason = f'too short ({len(mix) / sr:.1f} s)'
        if reason is not None:
            return PieceResult(job.piece_id, 'recorded', job.origin, False, reason=reason)
        offset = 0.0
        max_len = int(cfg.recorded_seconds * sr)
        if len(mix) > max_len:
            # One excerpt per track rather than whole tracks: more distinct pieces for the same hours.
            start = int(_rng(cfg.seed, 'excerpt', job.piece_id).integers(0, len(mix) - max_len + 1))
            offset = start / sr
            mix = mix[start:start + max_len].copy()
            fade = np.linspace(0.0, 1.0, sr // 20, dtype=np.float32)  # avoid clicks at the cuts
            mix[:len(fade)] *= fade
            mix[-len(fade):] *= fade[::-1]
        mix = resample(mix, sr)
        meta = {
            'title': job.title, 'artist': job.artist, 'genre': job.genre, 'key': None, 'bpm': None, 'moods': [],
            'keywords': list(job.keywords), 'instrument': job.instrument, 'origin': job.origin,
            'description': job.description or f'a {job.genre} piece "{job.title}" by {job.artist}',
            'excerpt': {'offset_seconds': round(offset, 3), 'stems': [os.path.basename(s) for s in job.stems]},
        }
        path, duration = _save_piece(Path(root), 'recorded', job.piece_id, normalize_loudness(mix), meta, cfg)
        return PieceResult(job.piece_id, 'recorded', job.origin, True, duration, path)
    except Exception as exc:  # unreadable/corrupt audio: skip and report
        return PieceResult(job.piece_id, 'recorded', job.origin, False, reason=f'{type(exc).__name__}: {exc}'[:300])


def _origin(kind: str, job: tp.Any) -> str:
    if kind == 'rendered':
        return job.path + (f'#X:{job.number}' if job.number is not None else '')
    return job.origin


def _cached(kind_job: tp.Tuple[str, tp.Any], root: str, cfg: BuildConfig) -> tp.Optional[PieceResult]:
    """Result of a piece already built by a previous run with the same variant, else None."""
    kind, job = kind_job
    wav_path, json_path = _piece_paths(Path(root), kind, job.piece_id)
    done = _finished(wav_path, json_path, cfg)
    if done is None:
        return None
    return PieceResult(job.piece_id, kind, _origin(kind, job), True, done, str(wav_path.resolve()), reused=True)


def _process(kind_job: tp.Tuple[str, tp.Any], root: str, cfg: BuildConfig) -> PieceResult:
    """Pool entry point (a module-level function, so it pickles)."""
    kind, job = kind_job
    cached = _cached(kind_job, root, cfg)
    if cached is not None:
        return cached
    return process_score(job, root, cfg) if kind == 'rendered' else process_recorded(job, root, cfg)


# ----------------------------------------------------------------------------------------------
# Ordered, budgeted, parallel execution.


def run_ordered(jobs: tp.Sequence[tp.Tuple[str, tp.Any]], root: str, cfg: BuildConfig, target_seconds: float,
                max_pieces: tp.Optional[int] = None, workers: int = 1, progress: bool = True,
                desc: str = '') -> tp.Tuple[tp.List[PieceResult], tp.List[PieceResult]]:
    """Process jobs in order until the successful prefix reaches `target_seconds` (or `max_pieces`).

    Jobs run out of order in a process pool, but results are consumed in job order, so the selection
    is the same for any number of workers. Returns (selected, skipped), both limited to that prefix;
    pieces finished beyond it are pruned later.
    """
    from tqdm import tqdm
    selected: tp.List[PieceResult] = []
    skipped: tp.List[PieceResult] = []
    total = 0.0
    bar = tqdm(total=round(target_seconds), unit='s', desc=desc, disable=not progress, leave=True)

    def consume(res: PieceResult) -> bool:
        """Add one in-order result; True when the budget is reached."""
        nonlocal total
        if res.ok:
            selected.append(res)
            bar.update(min(round(res.duration), max(0, round(target_seconds) - bar.n)))
            total += res.duration
        else:
            logger.warning('Skipping %s (%s): %s', res.piece_id, res.origin, res.reason)
            skipped.append(res)
        return total >= target_seconds or (max_pieces is not None and len(selected) >= max_pieces)

    try:
        if workers <= 1:
            for job in jobs:
                if consume(_process(job, root, cfg)):
                    break
            return selected, skipped
        ctx = mp.get_context('forkserver' if 'forkserver' in mp.get_all_start_methods() else 'spawn')
        results: tp.Dict[int, PieceResult] = {}
        pending: tp.Dict[Future, int] = {}
        next_submit = next_consume = 0
        finished = False

        def drain() -> bool:
            """Consume the results that are next in job order."""
            nonlocal next_consume
            while next_consume in results:
                next_consume += 1
                if consume(results.pop(next_consume - 1)):
                    return True
            return False

        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            def need_more() -> bool:
                """Whether the finished and queued results may still fall short of the budget: without
                this check, a slow piece at the head of the order would let the look-ahead render
                pieces past the cut (only to prune them)."""
                waiting = [r for r in results.values() if r.ok]
                if max_pieces is not None and len(selected) + len(waiting) >= max_pieces:
                    return False
                return total + sum(r.duration for r in waiting) < target_seconds

            while not finished:
                while (not finished and next_submit < len(jobs) and len(pending) < 2 * workers
                       and next_submit - next_consume < 4 * workers and need_more()):
                    # Finished pieces are taken in the main process: a resumed build then never
                    # renders (and prunes) pieces beyond the budget just to fill the pool.
                    cached = _cached(jobs[next_submit], root, cfg)
                    if cached is None:
                        pending[pool.submit(_process, jobs[next_submit], root, cfg)] = next_submit
                    else:
                        results[next_submit] = cached
                    next_submit += 1
                    finished = drain()
                if finished or not pending:
                    break
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    results[pending.pop(fut)] = fut.result()
                finished = drain()
            for fut in pending:
                fut.cancel()
        return selected, skipped
    finally:
        bar.close()


# ----------------------------------------------------------------------------------------------
# Splits, manifests and summary.


def assign_splits(pieces: tp.Sequence[tp.Tuple[str, str, float]], seed: int,
                  fractions: tp.Optional[tp.Dict[str, float]] = None,
                  min_pieces: int = MIN_PIECES_PER_SPLIT) -> tp.Dict[str, str]:
    """Split pieces (piece_id, source, duration) by piece, stratified by source.

    Each non-train split gets about its fraction of every source's duration, and at least
    `min_pieces` pieces overall (spread over the sources when they are large enough), while every
    source keeps at least one train piece. Deterministic given the seed.
    """
    fractions = dict(SPLIT_FRACTIONS if fractions is None else fractions)
    by_source: tp.Dict[str, tp.List[tp.Tuple[str, float]]] = {}
    for pid, source, dur in sorted(pieces):
        by_source.setdefault(source, []).append((pid, dur))
    n_eval = len(fractions)
    # Minimum pieces per split for each source: small sources first, large ones pick up the rest.
    mins: tp.Dict[str, int] = {}
    remaining = min_pieces
    order = sorted(by_source, key=lambda s: (len(by_source[s]), s))
    for i, source in enumerate(order):
        share = math.ceil(remaining / (len(order) - i))
        feasible = max(0, (len(by_source[source]) - 1) // n_eval)
        mins[source] = min(share, feasible)
        remaining -= mins[source]
    if remaining > 0:
        logger.warning('Too few pieces (%d) to give every split %d pieces', len(pieces), min_pieces)
    assignment = {}
    for source in sorted(by_source):
        items = by_source[source]
        rng = _rng(seed, 'split', source)
        items = [items[i] for i in rng.permutation(len(items))]
        total = sum(d for _, d in items)
        cursor = 0
        for split in sorted(fractions, key=lambda s: (fractions[s], s)):
            target, acc, count = fractions[split] * total, 0.0, 0
            while cursor < len(items) - 1:  # always leave one piece to train
                pid, dur = items[cursor]
                if count >= mins[source] and acc + dur / 2 > target:
                    break
                assignment[pid] = split
                acc += dur
                count += 1
                cursor += 1
        for pid, _ in items[cursor:]:
            assignment[pid] = 'train'
    return assignment


def write_manifests(root: Path, pieces: tp.Sequence[PieceResult], assignment: tp.Dict[str, str]) -> None:
    """One `egs/<split>/data.jsonl` per split, each line an audiocraft AudioMeta dict."""
    for split in SPLITS:
        lines = []
        for res in sorted(pieces, key=lambda r: r.path):
            if assignment[res.piece_id] != split:
                continue
            lines.append(json.dumps({'path': res.path, 'duration': round(res.duration, 6), 'sample_rate': SAMPLE_RATE,
                                     'amplitude': None, 'weight': None, 'info_path': None}))
        path = root / 'egs' / split / 'data.jsonl'
        path.parent.mkdir(parents=True, exist_ok=True)

        def _write(tmp: str, text: str = ''.join(line + '\n' for line in lines)) -> None:
            Path(tmp).write_text(text)
        _atomic_write_bytes(path, _write, '.jsonl')


def prune_unselected(root: Path, sources: tp.Sequence[str], keep: tp.Set[str]) -> int:
    """Remove pieces (and stale temp files) under audio/<source>/ that are not in the selection, so the
    folder mirrors the manifests: e.g. pieces finished beyond the budget by parallel workers."""
    removed = 0
    for source in sources:
        folder = root / 'audio' / source
        if not folder.exists():
            continue
        for f in folder.iterdir():
            stale_tmp = f.name.startswith('.') and f.name.endswith('.tmp')
            if stale_tmp or (f.suffix in ('.wav', '.json') and f.stem not in keep):
                f.unlink()
                removed += f.suffix == '.wav'
    return removed


def _disk_mb(root: Path) -> float:
    return sum(f.stat().st_size for f in root.rglob('*') if f.is_file()) / 2 ** 20


def build_from_jobs(root: tp.Union[str, Path], rendered_jobs: tp.Sequence[ScoreJob] = (),
                    recorded_jobs: tp.Sequence[RecordedJob] = (), hours: float = 2.0, seed: int = 0,
                    workers: tp.Optional[int] = None, max_pieces: tp.Optional[int] = None,
                    progress: bool = True, recorded_fraction: float = 0.35,
                    max_seconds: float = 90.0, min_seconds: float = 20.0, recorded_seconds: float = 120.0,
                    sources: tp.Sequence[str] = SOURCES) -> dict:
    """Build the dataset from explicit, already ordered job lists (tests inject inputs here).

    Args:
        root: output folder.
        rendered_jobs / recorded_jobs: jobs in the order they should be taken.
        hours: total duration budget; recorded gets at most `recorded_fraction` of it when both
            sources are used, rendered the rest.
        max_pieces: optional cap on the number of pieces per source.
        max_seconds / min_seconds: crop / repeat rendered scores to this range.
        recorded_seconds: longest excerpt taken from one recorded track.
    Returns:
        The summary dict (also written to `<root>/summary.json`).
    """
    start_time = time.time()
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cfg = BuildConfig(seed=seed, max_seconds=max_seconds, min_seconds=min_seconds,
                      recorded_seconds=recorded_seconds)
    workers = (os.cpu_count() or 1) if workers is None else workers
    budget = hours * 3600
    selected: tp.List[PieceResult] = []
    skipped: tp.List[PieceResult] = []
    used = [s for s in SOURCES if s in sources]
    for source in sorted(used, key=lambda s: s != 'recorded'):  # recorded first: rendered fills the rest
        if source == 'recorded':
            target = budget * recorded_fraction if 'rendered' in used else budget
            jobs: tp.List[tp.Tuple[str, tp.Any]] = [('recorded', j) for j in recorded_jobs]
        else:
            # Rendered fills what recorded left (recorded may fall short of its share).
            target = budget - sum(r.duration for r in selected)
            jobs = [('rendered', j) for j in rendered_jobs]
        sel, skip = run_ordered(jobs, str(root), cfg, target, max_pieces, workers, progress, desc=source)
        selected += sel
        skipped += skip
    pruned = prune_unselected(root, used, {r.piece_id for r in selected})
    assignment = assign_splits([(r.piece_id, r.source, r.duration) for r in selected], seed)
    write_manifests(root, selected, assignment)

    def hours_of(rs: tp.Iterable[PieceResult]) -> float:
        return round(sum(r.duration for r in rs) / 3600, 4)

    summary = {
        'root': str(root), 'seed': seed, 'hours_target': hours, 'sources': used, 'sample_rate': SAMPLE_RATE,
        'build_variant': cfg.variant(), 'recorded_fraction': recorded_fraction,
        'normalization': f'RMS {TARGET_RMS_DBFS:g} dBFS, peak ceiling {PEAK_CEILING_DBFS:g} dBFS, 16-bit PCM',
        'pieces': {s: sum(r.source == s for r in selected) for s in used},
        'hours': {s: hours_of(r for r in selected if r.source == s) for s in used},
        'total_pieces': len(selected), 'total_hours': hours_of(selected),
        'splits': {split: {
            'pieces': sum(assignment[r.piece_id] == split for r in selected),
            'hours': hours_of(r for r in selected if assignment[r.piece_id] == split),
            'hours_per_source': {s: hours_of(r for r in selected if r.source == s and assignment[r.piece_id] == split)
                                 for s in used},
        } for split in SPLITS},
        'built_now': sum(not r.reused for r in selected), 'reused': sum(r.reused for r in selected),
        'pruned': pruned,
        'skipped_counts': {s: sum(r.source == s for r in skipped) for s in used},
        'skipped': [{'piece_id': r.piece_id, 'source': r.source, 'origin': r.origin, 'reason': r.reason}
                    for r in skipped],
        'build_seconds': round(time.time() - start_time, 1),
    }
    summary['disk_mb'] = round(_disk_mb(root / 'audio'), 1)
    _write_json_atomic(root / 'summary.json', summary)
    return summary


def build_dataset(root: tp.Union[str, Path] = 'dataset/mmd_music', hours: float = 2.0, seed: int = 0,
                  sources: tp.Sequence[str] = SOURCES, workers: tp.Optional[int] = None,
                  max_pieces: tp.Optional[int] = None, progress: bool = True, **kwargs: tp.Any) -> dict:
    """Build the dataset from the music21 corpus and the Debian game-music packages.

    Checks the system requirements first (installing them with apt-get when running as root).
    Extra keyword arguments go to `build_from_jobs` (recorded_fraction, max_seconds, ...).
    """
    sources = tuple(sources)
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f'Unknown sources {sorted(unknown)}, expected a subset of {SOURCES}')
    check_requirements(sources)
    rendered = order_score_jobs(list_corpus_jobs(), seed) if 'rendered' in sources else []
    recorded: tp.List[RecordedJob] = []
    if 'recorded' in sources:
        recorded = list_recorded_jobs()
        perm = _rng(seed, 'order-recorded').permutation(len(recorded))
        recorded = [recorded[i] for i in perm]
    return build_from_jobs(root, rendered, recorded, hours=hours, seed=seed, workers=workers,
                           max_pieces=max_pieces, progress=progress, sources=sources, **kwargs)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--root', default='dataset/mmd_music', help='output folder')
    parser.add_argument('--hours', type=float, default=2.0, help='total duration budget in hours')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--sources', default=','.join(SOURCES), help='comma-separated subset of rendered,recorded')
    parser.add_argument('--workers', type=int, default=None, help='worker processes (default: CPU count)')
    parser.add_argument('--max-pieces', type=int, default=None, help='cap on the number of pieces per source')
    parser.add_argument('--recorded-fraction', type=float, default=0.35,
                        help='largest share of the hours given to the recorded source')
    parser.add_argument('--max-seconds', type=float, default=90.0, help='rendered scores are cropped below this')
    parser.add_argument('--recorded-seconds', type=float, default=120.0, help='longest excerpt per recorded track')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        summary = build_dataset(args.root, hours=args.hours, seed=args.seed,
                                sources=[s.strip() for s in args.sources.split(',') if s.strip()],
                                workers=args.workers, max_pieces=args.max_pieces, progress=not args.no_progress,
                                recorded_fraction=args.recorded_fraction, max_seconds=args.max_seconds,
                                recorded_seconds=args.recorded_seconds)
    except MissingDependencyError as exc:
        raise SystemExit(f'error: {exc}')
    brief = {k: summary[k] for k in ('pieces', 'hours', 'total_hours', 'skipped_counts', 'build_seconds', 'disk_mb')}
    brief['splits'] = {k: {'pieces': v['pieces'], 'hours': v['hours']} for k, v in summary['splits'].items()}
    print(json.dumps(brief, indent=2))
    return summary


if __name__ == '__main__':
    main()
