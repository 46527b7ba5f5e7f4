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

Loudness: RMS-normalized to -20 dBFS with a -1 dBFS peak ceiling (see `signal`).

Budget: ``hours`` is the total. The recorded source is built first, capped to ``recorded_fraction``
(default 35%) of it; the rendered source then fills the rest. Pieces are taken in a deterministic
(seeded) order, and a source stops at the first prefix of that order whose duration reaches its
budget, so the same seed always selects the same pieces whatever the number of workers.

One concept per module: `system_packages` (Debian tools and data), `signal` (trimming, loudness,
resampling), `pieces` (build parameters, files of a piece, resume check), `instruments` and
`scores` (music21 corpus, order, planning), `rendering` (MIDI with mido, FluidSynth), `recorded`
(game-music packages), `scheduler` (ordered budgeted pool), `splits` (splits and manifests); this
module builds the set from them and is its command line.

Usage::

    python -m audiocraft_mmd.data.prepare [--root dataset/mmd_music] [--hours 2.0] [--seed 0] \
        [--sources rendered,recorded] [--workers N]
"""


import argparse
import json
import logging
import os
from pathlib import Path
import time
import typing as tp

from .pieces import BuildConfig, PieceResult, seeded_rng, write_json_atomic
from .recorded import RecordedJob, list_recorded_jobs
from .scheduler import run_ordered
from .scores import ScoreJob, list_corpus_jobs, order_score_jobs
from .signal import PEAK_CEILING_DBFS, SAMPLE_RATE, TARGET_RMS_DBFS
from .splits import REFERENCE_SPLIT, SPLITS, assign_splits, prune_unselected, write_manifests
from .system_packages import MissingDependencyError, check_requirements

logger = logging.getLogger(__name__)

SOURCES = ('rendered', 'recorded')
NO_BUDGET = 1e9  # seconds: a piece count, not a duration, ends the reference split


def _disk_mb(root: Path) -> float:
    return sum(f.stat().st_size for f in root.rglob('*') if f.is_file()) / 2 ** 20


def build_from_jobs(root: tp.Union[str, Path], rendered_jobs: tp.Sequence[ScoreJob] = (),
                    recorded_jobs: tp.Sequence[RecordedJob] = (), hours: float = 2.0, seed: int = 0,
                    workers: tp.Optional[int] = None, max_pieces: tp.Optional[int] = None,
                    progress: bool = True, recorded_fraction: float = 0.35,
                    max_seconds: float = 90.0, min_seconds: float = 20.0, recorded_seconds: float = 120.0,
                    sources: tp.Sequence[str] = SOURCES, reference_pieces: int = 0) -> dict:
    """Build the dataset from explicit, already ordered job lists (tests inject inputs here).

    Args:
        root: output folder.
        rendered_jobs / recorded_jobs: jobs in the order they should be taken.
        hours: total duration budget; recorded gets at most `recorded_fraction` of it when both
            sources are used, rendered the rest.
        max_pieces: optional cap on the number of pieces per source.
        max_seconds / min_seconds: crop / repeat rendered scores to this range.
        recorded_seconds: longest excerpt taken from one recorded track.
        reference_pieces: pieces of an extra `reference` split (FAD reference, `egs/reference`), taken from
            the jobs after each source's selection, so train/valid/evaluate/generate stay exactly the same.
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
    rest: tp.Dict[str, tp.List[tp.Tuple[str, tp.Any]]] = {}  # per source, the jobs after its selection
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
        rest[source] = jobs[len(sel) + len(skip):]
    reference = build_reference(rest, str(root), cfg, reference_pieces, recorded_fraction, workers, progress)
    pruned = prune_unselected(root, used, {r.piece_id for r in selected + reference})
    assignment = assign_splits([(r.piece_id, r.source, r.duration) for r in selected], seed)
    write_manifests(root, selected, assignment)
    if reference_pieces:
        write_manifests(root, reference, {r.piece_id: REFERENCE_SPLIT for r in reference}, (REFERENCE_SPLIT,))

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
        **({'reference': {'pieces': len(reference), 'hours': hours_of(reference),
                          'hours_per_source': {s: hours_of(r for r in reference if r.source == s) for s in used}}}
           if reference_pieces else {}),
        'built_now': sum(not r.reused for r in selected), 'reused': sum(r.reused for r in selected),
        'pruned': pruned,
        'skipped_counts': {s: sum(r.source == s for r in skipped) for s in used},
        'skipped': [{'piece_id': r.piece_id, 'source': r.source, 'origin': r.origin, 'reason': r.reason}
                    for r in skipped],
        'build_seconds': round(time.time() - start_time, 1),
    }
    summary['disk_mb'] = round(_disk_mb(root / 'audio'), 1)
    write_json_atomic(root / 'summary.json', summary)
    return summary


def build_reference(rest: tp.Mapping[str, tp.Sequence[tp.Tuple[str, tp.Any]]], root: str, cfg: BuildConfig,
                    pieces: int, recorded_fraction: float, workers: int, progress: bool) -> tp.List[PieceResult]:
    """`pieces` pieces from the jobs no split uses (each source's jobs after its selection), recorded getting
    about `recorded_fraction` of them, as for the hours: real music of our sources that no model trains on."""
    if pieces <= 0:
        return []
    shares = {'recorded': round(pieces * recorded_fraction) if 'rendered' in rest else pieces}
    shares['rendered'] = pieces - shares.get('recorded', 0) if 'recorded' in rest else pieces
    out: tp.List[PieceResult] = []
    for source, jobs in rest.items():
        sel, _ = run_ordered(jobs, root, cfg, NO_BUDGET, shares[source], workers, progress,
                             desc=f'{source} reference')
        if len(sel) < shares[source]:
            logger.warning('reference split: %s has %d pieces left, %d asked', source, len(sel), shares[source])
        out += sel
    return out


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
        perm = seeded_rng(seed, 'order-recorded').permutation(len(recorded))
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
    parser.add_argument('--reference-pieces', type=int, default=0,
                        help='pieces of an extra reference split (egs/reference, the FAD reference) from pieces no '
                             'other split uses; the other splits are unchanged')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        summary = build_dataset(args.root, hours=args.hours, seed=args.seed,
                                sources=[s.strip() for s in args.sources.split(',') if s.strip()],
                                workers=args.workers, max_pieces=args.max_pieces, progress=not args.no_progress,
                                recorded_fraction=args.recorded_fraction, max_seconds=args.max_seconds,
                                recorded_seconds=args.recorded_seconds, reference_pieces=args.reference_pieces)
    except MissingDependencyError as exc:
        raise SystemExit(f'error: {exc}')
    brief = {k: summary[k] for k in ('pieces', 'hours', 'total_hours', 'skipped_counts', 'build_seconds', 'disk_mb')}
    brief['splits'] = {k: {'pieces': v['pieces'], 'hours': v['hours']} for k, v in summary['splits'].items()}
    print(json.dumps(brief, indent=2))
    return summary


if __name__ == '__main__':
    main()
