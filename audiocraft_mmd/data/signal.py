"""Signal processing of the builder: silence trimming, loudness normalization, silence checks, resampling.

Loudness: every piece is RMS-normalized to ``TARGET_RMS_DBFS`` (-20 dBFS over the whole trimmed
piece), with the gain lowered where needed so the peak stays at or under ``PEAK_CEILING_DBFS`` (-1 dBFS).
This is simple and deterministic; it is not LUFS (no K-weighting), which is fine for codec training.
"""
import math
import typing as tp

import numpy as np

SAMPLE_RATE = 32000

TARGET_RMS_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
SILENCE_PEAK = 1e-4  # digital silence: nothing louder than -80 dBFS
MIN_RMS_DBFS = -60.0  # a piece quieter than this over its whole length is treated as silent
TRIM_THRESHOLD_DB = -45.0  # frames this far below the loudest frame count as leading/trailing silence
TRIM_PAD_SECONDS = (0.1, 0.5)  # kept before the first / after the last non-silent frame
MIN_PIECE_SECONDS = 8.0


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
