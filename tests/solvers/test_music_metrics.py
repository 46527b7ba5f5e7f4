"""Solver wiring of the musicnn metrics: config errors at solver start, evaluation keys out of the
XP signature, and the compression solver's reconstruction FAD running through the codec."""
import logging

import pytest

from audiocraft_mmd.solvers import music_metrics
from audiocraft_mmd.train import get_solver, main
from conftest import datasource_overrides, xp_sig

LM = ['solver=musicgen/debug', 'device=cpu', 'compression_model_checkpoint=//sig/unused']
CODEC = ['solver=compression/encodec_mmd_debug', 'device=cpu']


@pytest.mark.parametrize('overrides,message', [
    (['metrics.text_consistency.use=true'], r'no local CLAP checkpoint at metrics\.text_consistency\.clap\.model_path'),
    (['metrics.fad.use=true'], r'evaluate segments of 2 s are shorter than one musicnn patch'),
    (['metrics.kld.use=true', 'metrics.kld.model=passt'], r'metrics\.kld\.use=true needs metrics\.kld\.model=musicnn'),
])
def test_unusable_metric_settings_fail_at_solver_start(overrides, message, dora_dir, monkeypatch):
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    xp = main.get_xp(LM + overrides)
    with xp.enter(), pytest.raises(ValueError, match=message):
        get_solver(xp.cfg)  # raises before the codec, the LM or any data are loaded


def test_turning_metrics_on_keeps_the_xp_signature():
    metrics_on = ['metrics.fad.use=true', 'metrics.kld.use=true', 'metrics.fad.musicnn.hop_seconds=1']
    assert xp_sig(LM) == xp_sig(LM + metrics_on)
    assert xp_sig(CODEC) == xp_sig(CODEC + ['metrics.fad.use=true'])


def test_reconstruction_fad_runs_through_the_codec(music_dataset, dora_dir, monkeypatch, caplog):
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    xp = main.get_xp(CODEC + datasource_overrides(music_dataset) + [
        'metrics.fad.use=true', 'metrics.fad.musicnn.max_duration=4', 'metrics.fad.musicnn.hop_seconds=0.5'])
    with xp.enter():
        solver = get_solver(xp.cfg)
        calls = []
        forward = solver.model.forward
        monkeypatch.setattr(solver.model, 'forward', lambda x: calls.append(x.shape) or forward(x))
        with caplog.at_level(logging.WARNING, logger=music_metrics.__name__):
            metrics = solver.run_stage('evaluate', music_metrics.evaluate_reconstruction_fad, solver)
    assert 'fad_musicnn' not in metrics
    files = len(solver.dataloaders['evaluate'].dataset.meta)
    assert len(calls) == files and all(shape[-1] == 4 * 32000 for shape in calls), calls
    # 4 s at hop 0.5 s: 1 + (250 - 187) // 31 = 3 patches per file, far from the 201 a full-rank FAD needs
    assert f'reference set has {3 * files} embeddings' in caplog.text


def test_generation_metrics_are_off_by_default():
    cfg = main.get_xp(LM).cfg
    assert music_metrics.evaluate_generation_metrics(type('Solver', (), {'cfg': cfg})()) == {}


@pytest.mark.slow  # ~35 s of CPU generation on 2 busy cores
def test_lm_evaluate_logs_musicnn_kld(debug_codec_sig, session_dora_dir, music_dataset, monkeypatch, caplog):
    """An (untrained) debug LM's evaluate stage with the metrics on: generation, KL and FAD's rank warning."""
    monkeypatch.setattr(main.dora, 'dir', session_dora_dir / 'metrics_lm')
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))  # where //sig/ of the codec resolves
    xp = main.get_xp(['solver=musicgen/debug', 'device=cpu', f'compression_model_checkpoint=//sig/{debug_codec_sig}',
                      *datasource_overrides(music_dataset), '+dataset.evaluate.segment_duration=3',
                      'dataset.evaluate.num_samples=2', 'dataset.evaluate.batch_size=2',
                      'metrics.fad.use=true', 'metrics.kld.use=true'])
    with xp.enter():
        solver = get_solver(xp.cfg)
        with caplog.at_level(logging.WARNING, logger=music_metrics.__name__):
            metrics = solver.run_stage('evaluate', music_metrics.evaluate_generation_metrics, solver)
    assert metrics['kld_musicnn'] == metrics['kld_pq_musicnn'] and metrics['kld_musicnn'] > 0, metrics
    assert metrics['kld_both_musicnn'] == pytest.approx(metrics['kld_pq_musicnn'] + metrics['kld_qp_musicnn'])
    assert 'fad_musicnn' not in metrics and 'reference set has 2 embeddings' in caplog.text
