"""Factorization gap (audiocraft_mmd.metrics.factorization_gap): units from histories, held-out cross-entropy."""
import json

import pytest

from audiocraft_mmd.models import MusicGenMMD


def test_factorization_gap_units(tmp_path):
    from audiocraft_mmd.metrics.factorization_gap import FactorizationGap, cross_entropy_from_history
    for name, ces in (('delay', [1.0, 2.0, 1.5, 0.5]), ('flatten', [1.0, 1.5, 1.0, 0.5])):
        (tmp_path / name).mkdir()
        valid = {'ce': sum(ces) / 4, **{f'ce_q{k + 1}': v for k, v in enumerate(ces)}}
        (tmp_path / name / 'history.json').write_text(json.dumps([{'train': {}, 'valid': valid}]))
    delay, flatten = (cross_entropy_from_history(str(tmp_path / n)) for n in ('delay', 'flatten'))
    assert delay.per_frame == pytest.approx(5.0) and delay.per_token == pytest.approx(1.25)
    gap = FactorizationGap(delay, flatten, frame_rate=50)
    assert gap.nats_per_frame == pytest.approx(1.0) and gap.as_dict()['gap_nats_per_second'] == pytest.approx(50)


def test_held_out_cross_entropy(debug_lm_sig, session_dora_dir, music_dataset, monkeypatch):
    from audiocraft_mmd.metrics.factorization_gap import cross_entropy_on_manifest
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    model = MusicGenMMD.get_pretrained(f'//sig/{debug_lm_sig}', device='cpu')
    ce = cross_entropy_on_manifest(model, music_dataset / 'egs' / 'valid', num_samples=4, batch_size=4)
    assert len(ce.per_codebook) == 4 and all(0 < v < 10 for v in ce.per_codebook)
    again = cross_entropy_on_manifest(model, music_dataset / 'egs' / 'valid', num_samples=4, batch_size=4)
    assert again.per_codebook == pytest.approx(ce.per_codebook), "segments must be deterministic"
