"""audiocraft_mmd.data.signal: silence trimming, loudness normalization, silence checks."""
import numpy as np

from audiocraft_mmd.data import signal


def test_trim_and_normalize():
    sr = signal.SAMPLE_RATE
    tone = 0.05 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr).astype(np.float32)
    wav = np.concatenate([np.zeros(sr, np.float32), tone, np.zeros(3 * sr, np.float32)])
    trimmed = signal.trim_silence(wav)
    assert abs(len(trimmed) / sr - (2 + sum(signal.TRIM_PAD_SECONDS))) < 0.02
    out = signal.normalize_loudness(trimmed)
    assert abs(20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) - signal.TARGET_RMS_DBFS) < 0.5
    assert signal.silence_reason(np.zeros(sr, np.float32)) == 'digital silence'
