"""`encodec.quantizer=no_quant` (audiocraft's DummyQuantizer): the codec without quantization, a reconstruction
ceiling for an architecture (docs/codec_collapse.md). Our solvers train it, log the liveness metrics that need
no codes, and refuse an MMD weight (there are no codebooks to make independent)."""
import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.solvers.compression_mmd import validate_config
from audiocraft_mmd.train import main


def test_trains_and_logs_liveness_without_codes(music_dataset, tmp_path):
    from conftest import TWO_UPDATES, datasource_overrides, trained_in_process
    argv = ['solver=compression/encodec_mmd_debug', 'device=cpu', 'encodec.quantizer=no_quant', 'losses.mmd=0',
            *datasource_overrides(music_dataset), *TWO_UPDATES]
    with trained_in_process(argv, tmp_path) as (solver, train, valid, before):
        assert not solver.has_codebooks
        assert any(not torch.equal(a, b) for a, b in zip(before, solver.model.encoder.parameters()))
        x = next(iter(solver.dataloaders['valid']))[:2]
        solver.model.eval()
        emb = solver.model.encoder(solver.model.preprocess(x)[0])
        assert torch.equal(solver.model.quantizer(emb, solver.model.frame_rate).x, emb), "no quantization"
    for key in ('sisnr_db', 'logmel_corr', 'cross_corr', 'rms_ratio'):
        assert torch.isfinite(torch.as_tensor(valid[key])), key
    assert 'min_usage' not in valid and 'perplexity_0' not in valid and 'mmd' not in valid


def test_mmd_weight_without_codebooks_is_a_config_error():
    cfg = main.get_xp(['solver=compression/encodec_mmd_debug', 'encodec.quantizer=no_quant', 'losses.mmd=10']).cfg
    with pytest.raises(ConfigError, match=r"`losses.mmd=10"):
        validate_config(cfg)
