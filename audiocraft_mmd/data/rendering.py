"""Rendered source: a planned score is written as a Standard MIDI File (with mido) and synthesized
with the FluidSynth CLI, then trimmed, checked and normalized.
"""
import os
from pathlib import Path
import subprocess
import tempfile
import typing as tp

import numpy as np

from .pieces import BuildConfig, PieceResult, job_origin, save_piece, seeded_rng
from .scores import ScoreJob, parse_score, plan_score
from .signal import MIN_PIECE_SECONDS, SAMPLE_RATE, normalize_loudness, silence_reason, trim_silence
from .system_packages import FLUIDSYNTH, SOUNDFONT_SF2, SOUNDFONT_SF3, MissingDependencyError, check_requirement


def write_midi(path: str, tracks: tp.Sequence[tp.Tuple[int, tp.Sequence[tp.Tuple[float, float, int, int]]]],
               bpm: float, ticks_per_quarter: int = 480) -> None:
    """Write a format-1 Standard MIDI File with mido: a tempo track, then one track per part.

    Not music21's exporter: program, channel, tempo and transposition are set here per piece
    (music21 takes them from instrument objects of the score).

    Args:
        tracks: (GM program, notes) with notes as (start_ql, dur_ql, midi_pitch, velocity).
    """
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    midi.tracks.append(_track([(0, 0, mido.MetaMessage('set_tempo', tempo=int(round(60_000_000 / bpm))))]))
    channels = [c for c in range(16) if c != 9]  # channel 10 is percussion in GM
    for i, (program, notes) in enumerate(tracks):
        ch = channels[i % len(channels)]
        events = [(0, 0, mido.Message('program_change', channel=ch, program=program)),
                  (0, 0, mido.Message('control_change', channel=ch, control=7, value=100))]
        for start, dur, pitch, vel in notes:
            on = int(round(start * ticks_per_quarter))
            off = max(on + 1, int(round((start + dur) * ticks_per_quarter)))
            pitch = min(127, max(0, pitch))
            # priority 1 = note-off before note-on at the same tick, so repeated notes re-attack.
            events.append((on, 2, mido.Message('note_on', channel=ch, note=pitch, velocity=min(127, max(1, vel)))))
            events.append((off, 1, mido.Message('note_off', channel=ch, note=pitch, velocity=0)))
        midi.tracks.append(_track(events))
    midi.save(path)


def _track(events: tp.List[tp.Tuple[int, int, tp.Any]]) -> tp.Any:
    """A mido track of (absolute tick, priority, message) events, in time then priority order."""
    import mido
    track, last = mido.MidiTrack(), 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - last))
        last = tick
    return track


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


def process_score(job: ScoreJob, root: str, cfg: BuildConfig) -> PieceResult:
    """Parse, plan, synthesize and save one score (no resume check: see `scheduler.process`).

    Never raises on bad input: failures come back as results.
    """
    origin = job_origin('rendered', job)
    try:
        score = parse_score(job)
        tracks, bpm, meta = plan_score(job, score, cfg)
        rng = seeded_rng(cfg.seed, 'soundfont', job.piece_id)
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
        path, duration = save_piece(Path(root), 'rendered', job.piece_id, normalize_loudness(wav), meta, cfg)
        return PieceResult(job.piece_id, 'rendered', origin, True, duration, path)
    except MissingDependencyError:
        raise
    except Exception as exc:  # corrupt/unsupported score: skip and report
        return PieceResult(job.piece_id, 'rendered', origin, False, reason=f'{type(exc).__name__}: {exc}'[:300])
