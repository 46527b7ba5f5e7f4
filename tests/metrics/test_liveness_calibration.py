"""The calibration degradations do what they say, and the liveness metrics rank them as the damage."""
import math

import torch

from audiocraft_mmd.metrics.liveness_calibration import calibrate, low_pass, mu_law, white_noise


def _music_like(n: int = 8, sample_rate: int = 8000, seed: int = 0) -> torch.Tensor:
    """[n, 1, sample_rate] sums of decaying partials with random pitches: energy spread over time and bands."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(sample_rate) / sample_rate
    f0 = 100 + 300 * torch.rand(n, 1, 1, generator=g)
    harmonics = torch.arange(1, 9).view(1, 8, 1)
    tones = torch.sin(2 * math.pi * f0 * harmonics * t) / harmonics * torch.exp(-3 * t)
    return 0.1 * tones.sum(1, keepdim=True) + 1e-3 * torch.randn(n, 1, sample_rate, generator=g)


def test_white_noise_has_the_asked_snr():
    x = _music_like()
    noise = white_noise(20.)(x, torch.Generator().manual_seed(1)) - x
    snr = 10 * torch.log10(x.pow(2).mean(dim=(1, 2)) / noise.pow(2).mean(dim=(1, 2)))
    # 8000 Gaussian samples per clip: the noise power's relative SE is sqrt(2 / 8000) = 1.6%, 0.07 dB
    assert torch.allclose(snr, torch.full_like(snr, 20.), atol=0.35)


def test_low_pass_removes_the_band_above_its_cutoff():
    t = torch.arange(8000) / 8000
    x = (torch.sin(2 * math.pi * 300 * t) + torch.sin(2 * math.pi * 3000 * t)).view(1, 1, -1)
    spectrum = torch.fft.rfft(low_pass(1000, 8000)(x, torch.Generator())[0, 0]).abs()  # 1 Hz bins
    assert spectrum[3000] < 0.01 * spectrum[300]
    assert abs(spectrum[300] / torch.fft.rfft(x[0, 0]).abs()[300] - 1) < 0.01


def test_mu_law_error_shrinks_with_bits():
    x = _music_like()
    errors = [(mu_law(b)(x, torch.Generator()) - x).pow(2).mean() for b in (4, 6, 8)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert (mu_law(8)(x, torch.Generator()) - x).abs().max() < 0.01  # the largest 8-bit step near 0.3 is ~0.006


def test_metrics_rank_each_family_by_its_damage():
    results = calibrate(_music_like(16), 8000)
    for family in (('white noise, SNR 10 dB', 'white noise, SNR 20 dB', 'white noise, SNR 30 dB'),
                   ('mu-law 4 bits', 'mu-law 6 bits', 'mu-law 8 bits')):
        corr = [results[name]['logmel_corr'] for name in family]
        snr = [results[name]['sisnr_db'] for name in family]
        assert corr[0] < corr[1] < corr[2] <= 1, (family, corr)
        assert snr[0] < snr[1] < snr[2], (family, snr)
    assert abs(results['white noise, SNR 20 dB']['sisnr_db'] - 20) < 0.5


class _Codec(torch.nn.Module):
    """A stand-in compression model: `model(x).x` is `transform(x)` (only what `codec_liveness` uses)."""

    def __init__(self, transform):
        super().__init__()
        self.sample_rate, self.transform = 8000, transform

    def forward(self, x):
        from audiocraft.quantization import QuantizedResult
        return QuantizedResult(self.transform(x), None, torch.tensor(0.))


def test_codec_rows_use_the_reconstruction():
    """A lossless codec scores a log-mel correlation of 1, one that returns its input plus 20 dB of noise the
    same as that calibration row: the codec rows and the degradation rows are measured alike."""
    from audiocraft_mmd.metrics.liveness_calibration import codec_liveness
    x = _music_like(16)
    assert codec_liveness(_Codec(lambda a: a.clone()), x)['logmel_corr'] > 0.999
    noisy = white_noise(20.)
    codec = codec_liveness(_Codec(lambda a: noisy(a, torch.Generator().manual_seed(0))), x)
    assert abs(codec['sisnr_db'] - 20) < 0.5 and codec['logmel_corr'] < 0.99


def test_the_command_line_reads_a_folder_of_audio(tmp_path, capsys):
    """`main` reads the segments itself (data.audio_input, no solver or reproduction module) and prints one row per
    degradation: 2 files of 2.5 s give 4 segments of 1 s (tails dropped)."""
    from audiocraft.data.audio import audio_write
    from audiocraft_mmd.metrics.liveness_calibration import degradations, main
    for i, clip in enumerate(_music_like(2, sample_rate=8000).repeat(1, 1, 3)[..., :20000]):
        audio_write(tmp_path / f'clip{i}', clip, 8000, format='wav')
    main(['--manifest', str(tmp_path), '--sample-rate', '8000'])
    out = capsys.readouterr().out
    assert out.startswith(f"4 segments of 1 s from {tmp_path}")
    rows = [line for line in out.splitlines() if line.startswith('| ') and not line.startswith('| degradation')]
    assert [row.split(' | ')[0][2:] for row in rows] == list(degradations(8000))
