"""SI-SNR in dB with the sign users expect (higher is better).

audiocraft's `SISNR` loss, and the `sisnr` metric its compression solver logs, is the *negative*
SI-SNR (`audiocraft/losses/sisnr.py`: "returns the opposite of the SI-SNR"): a logged `sisnr=34`
is an SI-SNR of -34 dB, a poor reconstruction, not an excellent one.
"""


def si_snr_db(audiocraft_sisnr: float) -> float:
    """SI-SNR in dB from audiocraft's `sisnr` loss or logged metric (its negative)."""
    return -float(audiocraft_sisnr)
