"""MusicGenMMDSolver on CPU: a debug LM trains on the tokens of a debug EnCodec-MMD trained in the same
session (//sig/ resolved in our Dora folder), and runs its valid/evaluate/generate stages."""
import json
import math

import omegaconf
import pytest
import torch

from conftest import datasource_overrides, run_dora, xp_sig
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
    from audiocraft_mmd.models.exported import WrongCheckpointKind, compression_package
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    with pytest.raises(WrongCheckpointKind, match=r'checkpoint\.th.*MusicGen LM.*not a compression model'):
        compression_package(f'//sig/{debug_lm_sig}')


@pytest.mark.slow  # ~50 s on 2 idle cores (a renormalizing codec, then an LM on it): keeps make test under 10 min
def test_lm_trains_on_a_renormalizing_codec(music_dataset, session_dora_dir, monkeypatch):
    """The CPU recipe's codecs renormalize (`encode` returns a scale), which audiocraft's MusicGenSolver
    asserts against: the solver wraps them (`models.fixed_volume`), and the loaded model decodes at the
    LM's `compression_model_volume`."""
    from audiocraft_mmd.models import MusicGenMMD
    from audiocraft_mmd.models.fixed_volume import FixedVolumeCompressionModel
    codec = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'optim.epochs=1', 'optim.updates_per_epoch=2',
             'encodec.renormalize=true', *datasource_overrides(music_dataset)]
    run_dora(codec, session_dora_dir)
    lm = ['solver=musicgen/debug', 'device=cpu', f'compression_model_checkpoint=//sig/{xp_sig(codec)}',
          'optim.epochs=1', 'compression_model_volume=0.05', *datasource_overrides(music_dataset)]
    run_dora(lm, session_dora_dir)
    history = json.loads((session_dora_dir / 'xps' / xp_sig(lm) / 'history.json').read_text())
    assert math.isfinite(history[-1]['valid']['ce'])
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    model = MusicGenMMD.get_pretrained(f'//sig/{xp_sig(lm)}', device='cpu')
    assert isinstance(model.compression_model, FixedVolumeCompressionModel)
    assert model.compression_model.volume == 0.05, "the LM's compression_model_volume"


def test_bad_volume_is_a_config_error():
    with pytest.raises(ConfigError, match='compression_model_volume'):
        validate_musicgen_config(omegaconf.OmegaConf.create({'compression_model_checkpoint': '//sig/x',
                                                             'compression_model_volume': -1}))
