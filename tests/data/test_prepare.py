"""Tests of the offline music dataset builder (audiocraft_mmd.data.prepare and the modules it builds from).

A single tiny build (a few 10-15 s pieces from both sources) is shared by the module to keep the
whole file well under a minute on a loaded 2-core machine.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiocraft_mmd.data import prepare, scores, signal, splits
from audiocraft_mmd.data.recorded import RecordedJob

SMALL = dict(hours=0.04, seed=0, max_seconds=15.0, min_seconds=10.0, recorded_seconds=15.0, progress=False)
SIDE_KEYS = {'title', 'artist', 'genre', 'key', 'bpm', 'moods', 'keywords', 'description', 'instrument',
             'source', 'origin', 'name'}


def _manifest(root: Path, split: str) -> list:
    with open(root / 'egs' / split / 'data.jsonl') as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def small_build(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmd_music')
    summary = prepare.build_dataset(root, workers=2, **SMALL)
    return root, summary


def test_audio_matches_manifest_and_sidecar(small_build):
    root, summary = small_build
    assert summary['pieces']['rendered'] >= 5 and summary['pieces']['recorded'] >= 1
    # The budget is met by whole pieces: at most one piece (<= 17.5 s) over it per source.
    budget = SMALL['hours'] * 3600
    assert budget <= summary['total_hours'] * 3600 <= budget + 2 * 17.5
    assert summary['hours']['recorded'] * 3600 <= 0.35 * budget + 17.5
    entries = [e for split in splits.SPLITS for e in _manifest(root, split)]
    assert len(entries) == summary['total_pieces']
    for entry in entries:
        wav, sr = sf.read(entry['path'], dtype='float32')
        assert sr == 32000 and entry['sample_rate'] == 32000
        assert wav.ndim == 1  # mono
        assert abs(len(wav) / sr - entry['duration']) < 1e-3
        # 15 s of score (recorded: excerpt), plus the release/reverb tail kept after the last note.
        assert signal.MIN_PIECE_SECONDS <= entry['duration'] <= 15.0 + 2.5
        rms_db = 20 * np.log10(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
        assert rms_db > -30, f"{entry['path']} is too quiet ({rms_db:.1f} dBFS)"
        assert np.abs(wav).max() <= 10 ** (signal.PEAK_CEILING_DBFS / 20) + 1e-3
        side = json.loads(Path(entry['path']).with_suffix('.json').read_text())
        assert SIDE_KEYS <= set(side)
        assert side['source'] == Path(entry['path']).parent.name
        assert side['name'] == Path(entry['path']).stem
        assert side['description']
        if side['source'] == 'rendered':
            assert side['bpm'] > 0 and side['key'] and f"{side['bpm']:g} bpm" in side['description']


def test_manifests_load_with_audiocraft(small_build):
    from audiocraft.data.audio_dataset import AudioDataset, load_audio_meta
    root, summary = small_build
    for split in splits.SPLITS:
        meta = load_audio_meta(root / 'egs' / split / 'data.jsonl')
        assert len(meta) == summary['splits'][split]['pieces'] >= 2
        assert all(Path(m.path).is_absolute() and m.sample_rate == 32000 for m in meta)
    dataset = AudioDataset.from_meta(root / 'egs' / 'train', segment_duration=1.0, sample_rate=32000, channels=1,
                                     num_samples=4, shuffle=False)
    assert dataset[0].shape == (1, 32000)


def test_splits_disjoint_and_deterministic(small_build, tmp_path):
    root, summary = small_build
    ids = {split: {Path(e['path']).stem for e in _manifest(root, split)} for split in splits.SPLITS}
    all_ids = [i for split in splits.SPLITS for i in ids[split]]
    assert len(all_ids) == len(set(all_ids)), 'a piece is in two splits'
    on_disk = {p.stem for p in (root / 'audio').rglob('*.wav')}
    assert set(all_ids) == on_disk

    # Same seed, same split; another seed, another split; each split gets >= 2 pieces.
    pieces = [(f'p{i}', 'rendered' if i % 3 else 'recorded', 30.0 + i) for i in range(60)]
    a = splits.assign_splits(pieces, seed=0)
    assert a == splits.assign_splits(list(reversed(pieces)), seed=0)
    assert a != splits.assign_splits(pieces, seed=1)
    total = sum(d for _, _, d in pieces)
    for split, frac in splits.SPLIT_FRACTIONS.items():
        members = [p for p in pieces if a[p[0]] == split]
        assert len(members) >= 2
        assert abs(sum(d for _, _, d in members) / total - frac) < 0.03

    # A fresh build with the same seed selects the same first pieces and renders identical audio.
    again = prepare.build_dataset(tmp_path / 'again', workers=1, sources=('rendered',), max_pieces=2, **SMALL)
    assert again['total_pieces'] == 2
    for wav in (tmp_path / 'again' / 'audio' / 'rendered').glob('*.wav'):
        assert wav.read_bytes() == (root / 'audio' / 'rendered' / wav.name).read_bytes()


def test_rerun_skips_finished(small_build):
    root, summary = small_build
    files = sorted((root / 'audio').rglob('*'))
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    manifests = {s: (root / 'egs' / s / 'data.jsonl').read_text() for s in splits.SPLITS}
    rerun = prepare.build_dataset(root, workers=2, **SMALL)
    assert rerun['built_now'] == 0 and rerun['reused'] == summary['total_pieces']
    assert rerun['pruned'] == 0, 'the rerun rendered pieces beyond the budget'
    assert sorted((root / 'audio').rglob('*')) == files
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    assert {s: (root / 'egs' / s / 'data.jsonl').read_text() for s in splits.SPLITS} == manifests
    assert not [f for f in files if f.name.endswith('.tmp')], 'temporary file left behind'


def test_corrupt_inputs_are_skipped(tmp_path):
    rng = np.random.default_rng(0)
    bad = {}
    for name in ('bad_tune.abc', 'bad_midi.mid', 'bad_audio.ogg'):
        bad[name] = tmp_path / name
        bad[name].write_bytes(b'MThd' + rng.bytes(512) if name.endswith('.mid') else rng.bytes(2048))
    from music21 import corpus
    good = str(corpus.getWork('bach/bwv66.6'))
    rendered = scores.score_jobs_from_paths([str(bad['bad_tune.abc']), str(bad['bad_midi.mid']), good])
    recorded = [RecordedJob('bad_audio', [str(bad['bad_audio.ogg'])], 'Broken', 'Nobody', 'rock', 'test')]
    summary = prepare.build_from_jobs(tmp_path / 'out', rendered, recorded, workers=1, **SMALL)
    assert summary['skipped_counts'] == {'rendered': 2, 'recorded': 1}
    assert {s['piece_id'] for s in summary['skipped']} == {'bad_tune', 'bad_midi', 'bad_audio'}
    assert all(s['reason'] for s in summary['skipped'])
    assert summary['total_pieces'] == 1
    on_disk = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert on_disk['skipped_counts'] == summary['skipped_counts']


def test_reference_split_leaves_other_splits_unchanged(small_build):
    """--reference-pieces adds egs/reference from pieces no split uses; the other manifests stay byte-identical."""
    root, summary = small_build
    manifests = {s: (root / 'egs' / s / 'data.jsonl').read_text() for s in splits.SPLITS}
    with_reference = prepare.build_dataset(root, workers=1, reference_pieces=3, **SMALL)
    assert {s: (root / 'egs' / s / 'data.jsonl').read_text() for s in splits.SPLITS} == manifests
    reference = _manifest(root, splits.REFERENCE_SPLIT)
    assert with_reference['reference']['pieces'] == len(reference) == 3
    used = {json.loads(line)['path'] for text in manifests.values() for line in text.splitlines()}
    assert not used & {m['path'] for m in reference}, 'a reference piece is also in a split'
    assert all(Path(m['path']).exists() for m in reference)
