"""xp_summary prints SI-SNR in dB with its real sign (audiocraft logs `sisnr` as its negative)."""
import json

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
