"""Recorded source: game music from Debian packages (Wesnoth orchestral tracks, Frets on Fire songs
whose stems are mixed down), cut to one excerpt per track.
"""
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import shutil
import subprocess
import typing as tp

import numpy as np
import soundfile as sf

from .pieces import BuildConfig, PieceResult, sanitize, save_piece, seeded_rng
from .signal import MIN_PIECE_SECONDS, SAMPLE_RATE, normalize_loudness, resample, silence_reason, trim_silence
from .system_packages import FOF_MULDJORD, FOF_SECTOID, WESNOTH_MUSIC


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
            f'wesnoth_{sanitize(ogg.stem)}', [str(ogg)], title, 'Battle for Wesnoth composers', 'orchestral',
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
                f'fretsonfire_{sanitize(Path(pack[0]).name)}_{sanitize(song.name)}', stems,
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
    """Decode, mix stems, cut one excerpt, resample, normalize and save (no resume check: see `scheduler.process`).

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
            start = int(seeded_rng(cfg.seed, 'excerpt', job.piece_id).integers(0, len(mix) - max_len + 1))
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
        path, duration = save_piece(Path(root), 'recorded', job.piece_id, normalize_loudness(mix), meta, cfg)
        return PieceResult(job.piece_id, 'recorded', job.origin, True, duration, path)
    except Exception as exc:  # unreadable/corrupt audio: skip and report
        return PieceResult(job.piece_id, 'recorded', job.origin, False, reason=f'{type(exc).__name__}: {exc}'[:300])
