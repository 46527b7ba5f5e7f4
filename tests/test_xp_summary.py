"""xp_summary prints SI-SNR in dB with its real sign (audiocraft logs `sisnr` as its negative)."""
import json

import pytest
import torch

from audiocraft_mmd import xp_summary


def test_logged_sisnr_is_shown_as_negative_db(dora_dir, monkeypatch, capsys):
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    argv = ['solver=compression/encodec_mmd_debug', 'device=cpu']
    xp = main.get_xp(argv)
    xp.folder.mkdir(parents=True)
    (xp.folder / 'history.json').write_text(json.dumps([{'valid': {'sisnr': 34.0, 'msspec': 0.5},
                                                         'evaluate': {'sisnr': -12.5, 'tc': 3.0}}]))
    xp_summary.main(argv)
    out = capsys.readouterr().out
    assert 'last valid: msspec=0.5, si_snr=-34 dB' in out
    assert 'last evaluate: si_snr=12.5 dB, tc=3' in out
    assert 'sisnr=' not in out


def test_the_logged_sisnr_flips_to_a_high_positive_db_for_a_good_reconstruction():
    from audiocraft.losses import SISNR
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 1, 8000, generator=g)
    close = ref + 0.01 * torch.randn(2, 1, 8000, generator=g)  # 40 dB below the signal
    far = ref + 10. * torch.randn(2, 1, 8000, generator=g)     # 20 dB above it
    loss = SISNR(sample_rate=8000)
    assert loss(close, ref).item() < 0  # audiocraft: lower is better, negative for a good match
    assert xp_summary.sisnr_db_from_logged(loss(close, ref).item()) == pytest.approx(40., abs=1.)
    assert xp_summary.sisnr_db_from_logged(loss(far, ref).item()) == pytest.approx(-20., abs=1.)


def test_sig_alone_is_the_reference_export_takes(dora_dir, monkeypatch, capsys):
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    argv = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'optim.epochs=3']
    xp_summary.main(['--sig', *argv])
    assert capsys.readouterr().out == f'//sig/{main.get_xp(argv).sig}\n'
