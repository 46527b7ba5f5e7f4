"""Fixtures of the music-quality metric tests."""
import json
import typing as tp
from pathlib import Path

import pytest


@pytest.fixture(scope='session')
def recorded_music(tmp_path_factory) -> tp.Dict[str, tp.List[Path]]:
    """genre -> audio files of recorded music of two clearly different genres (rock: Frets on Fire;
    orchestral: Wesnoth), built by our dataset builder from the Debian game-music packages: 8 excerpts
    of 10 s (~15 s on 2 cores). The session's `music_dataset` is rendered scores only, where a piece's
    genre label (its corpus) says little about its sound (instruments are drawn at random)."""
    from audiocraft_mmd.data.prepare import build_dataset
    root = tmp_path_factory.mktemp('recorded')
    build_dataset(root=root, hours=0.05, seed=0, max_pieces=8, progress=False, workers=2, sources=('recorded',),
                  recorded_seconds=10)
    genres: tp.Dict[str, tp.List[Path]] = {}
    for meta in sorted((root / 'audio').rglob('*.json')):
        genres.setdefault(json.loads(meta.read_text())['genre'], []).append(meta.with_suffix('.wav'))
    assert all(path.exists() for paths in genres.values() for path in paths), "builder metadata without audio"
    return genres
