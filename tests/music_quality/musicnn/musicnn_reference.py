"""Deterministic 16 kHz test signals for the musicnn TF-vs-PyTorch comparison.

Shared by `scripts/make_musicnn_reference.py` (which ran the original TensorFlow model on them, in a
throwaway environment) and `test_musicnn.py` (which runs our port on the same signals). Plain numpy:
no TensorFlow or project imports, so the script can load this file on its own.
"""
import numpy as np

SAMPLE_RATE = 16000
DURATION = 6.5  # 1 + 6.5 * 16000 // 256 = 407 STFT frames -> two 187-frame patches


def reference_signals() -> dict:
    """name -> float32 mono waveform [T] at 16 kHz, at moderate and full-scale levels."""
    t = np.arange(int(DURATION * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    chord = sum(0.1 / h * np.sin(2 * np.pi * h * f * t) for f in (220.0, 277.18, 329.63) for h in (1, 2, 3))
    chord = chord * (0.6 + 0.4 * np.sin(2 * np.pi * 2.0 * t))
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 * t + 0.5 * (4000.0 - 100.0) / DURATION * t ** 2))
    clicks = np.zeros_like(t)
    burst = rng.standard_normal(800) * np.exp(-np.arange(800) / 120.0)
    for start in range(0, len(t) - 800, SAMPLE_RATE // 2):
        clicks[start:start + 800] += 0.5 * burst
    drums = clicks + 0.2 * np.sin(2 * np.pi * 55.0 * t)
    signals = {
        'chord': chord,
        'noise': 0.1 * rng.standard_normal(len(t)),
        'chirp': chirp,
        'drums': drums,
        # full scale: the original's float16 mel overflows to inf here, our float32 path does not
        'full_scale': 0.99 * np.sign(np.sin(2 * np.pi * 440.0 * t)),
    }
    return {name: x.astype(np.float32) for name, x in signals.items()}
