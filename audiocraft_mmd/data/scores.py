"""Scores of music21's corpus: which files (multi-tune ABC books split into tunes), in which seeded
order, and how a parsed score becomes MIDI tracks, a tempo and MusicGen metadata.
"""
from dataclasses import dataclass
import math
import os
from pathlib import Path
import re
import typing as tp

import numpy as np

from .instruments import (COLLECTIONS, DEFAULT_BPM, ENSEMBLES, GM_NAMES, GROUP_WEIGHTS, SOLOS, TEMPO_RANGE,
                          TRANSPOSE_RANGE)
from .pieces import BuildConfig, sanitize, seeded_rng


@dataclass
class ScoreJob:
    """One score to render: a file of the music21 corpus (or any score file), and a tune number
    for multi-tune ABC books."""
    piece_id: str
    path: str
    number: tp.Optional[int] = None
    collection: str = 'misc'


# Corpus folders that hold test/demo material rather than music.
EXCLUDED_DIRS = {'demos', 'theoryExercises'}
EXCLUDED_FILES = re.compile(r'^test.*\.abc$')  # essenFolksong/test*.abc are parser test books
SCORE_EXTS = {'.mxl', '.xml', '.musicxml', '.krn', '.abc'}  # .rntxt are harmonic analyses, not scores

PITCH_NAMES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B']


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
        base = sanitize(os.path.splitext(rel)[0].replace(os.sep, '_'))
        if base in seen:  # e.g. x.mxl and x.krn side by side
            base = sanitize(rel.replace(os.sep, '_'))
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


def collection_group(collection: str) -> str:
    return COLLECTIONS.get(collection, ('', '', '', 'classical'))[3]


def order_score_jobs(jobs: tp.Sequence[ScoreJob], seed: int) -> tp.List[ScoreJob]:
    """Deterministic order: shuffle each weighting group, then interleave groups by GROUP_WEIGHTS."""
    rng = seeded_rng(seed, 'order-rendered')
    groups: tp.Dict[str, tp.List[ScoreJob]] = {}
    for job in sorted(jobs, key=lambda j: j.piece_id):
        groups.setdefault(collection_group(job.collection), []).append(job)
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
    """Krumhansl-Kessler key of (start, duration, midi pitch, velocity) notes, named like 'Eb major'.

    music21's `analysis.discrete.KrumhanslKessler` (duration-weighted pitch classes against the
    Krumhansl-Kessler profiles) replaced our own implementation of the same method: both gave the same
    key on the first 200 scores of the seed-0 order, at ~50 ms per piece (next to seconds of synthesis).
    """
    from music21 import analysis, note, stream
    if sum(dur for _, dur, _, _ in notes) <= 0:
        return None
    melody = stream.Stream()
    for start, dur, midi, _ in notes:
        n = note.Note(midi)
        n.quarterLength = dur
        melody.insert(start, n)
    key = analysis.discrete.KrumhanslKessler().getSolution(melody)
    return f'{PITCH_NAMES[key.tonic.pitchClass]} {key.mode}'


def parse_score(job: ScoreJob) -> tp.Any:
    from music21 import converter, stream
    score = converter.parseFile(job.path, number=job.number, forceSource=True)
    if isinstance(score, stream.Opus):
        scores = list(score.scores)
        if not scores:
            raise ValueError('empty ABC/opus file')
        score = scores[0]
    return score


def plan_score(job: ScoreJob, score: tp.Any, cfg: BuildConfig) -> tp.Tuple[list, float, dict]:
    """Turn a parsed score into MIDI tracks + tempo + metadata, with per-piece random choices."""
    rng = seeded_rng(cfg.seed, 'rendered', job.piece_id)
    group = collection_group(job.collection)
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
