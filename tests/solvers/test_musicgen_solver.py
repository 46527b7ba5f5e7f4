"""MusicGenMMDSolver on CPU: a debug LM trains on the tokens of a debug EnCodec-MMD trained in the same
session (//sig/ resolved in our Dora folder), and runs its valid/evaluate/generate stages."""
import json
import math

import omegaconf
import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.solvers.musicgen_mmd import validate_config as validate_musicgen_config


def test_debug_lm_trains_on_mmd_codes(debug_lm_sig, session_dora_dir):
    folder = session_dora_dir / 'xps' / debug_lm_sig
    history = json.loads((folder / 'history.json').read_text())
    assert len(history) == 2, "musicgen/debug runs 2 epochs"
    for stage in ('train', 'valid', 'evaluate'):
        metrics = history[-1][stage]
        for key in ('ce', 'ppl', 'ce_q1', 'ce_q4'):
            assert key in metrics and math.isfinite(metrics[key]), f"{stage}.{key}: {metrics}"
        # audiocraft's ce is the mean of the per-codebook ce
        per_codebook = [metrics[f'ce_q{k}'] for k in range(1, 5)]
        assert metrics['ce'] == pytest.approx(sum(per_codebook) / 4, rel=1e-4)
    assert history[-1]['train']['ce'] < history[0]['train']['ce'], "training did not lower the CE"
    assert 'rtf' in history[-1]['generate']
    wavs = list((folder / 'samples').rglob('*.wav'))
    assert wavs, "generate stage wrote no audio"
    # the sidecar descriptions reached the conditioner (sample names carry the hydrated conditions)
    assert any('description=' in w.name for w in wavs)
    state = torch.load(folder / 'checkpoint.th', map_location='cpu', weights_only=True)
    assert state['xp.cfg']['solver'] == 'musicgen_mmd'
    assert state['xp.cfg']['compression_model_checkpoint'].startswith('//sig/'), "the user's value is stored"


def test_missing_codec_is_a_config_error():
    with pytest.raises(ConfigError, match='compression_model_checkpoint'):
        validate_musicgen_config(omegaconf.OmegaConf.create({'compression_model_checkpoint': None}))


def test_lm_given_as_codec_is_refused(debug_lm_sig, session_dora_dir, monkeypatch):
    from audiocraft_mmd.export import WrongCheckpointKind, compression_package
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    with pytest.raises(WrongCheckpointKind, match=r'checkpoint\.th.*MusicGen LM.*not a compression model'):
        compression_package(f'//sig/{debug_lm_sig}')
