"""End to end: the LM study on a debug codec (2 tiny LMs), its report, and a resume that retrains nothing."""
import json

import pytest

from conftest import datasource_overrides
from audiocraft_mmd.studies.lm.solver.__main__ import main

TINY_LM = ['transformer_lm.dim=32', 'transformer_lm.num_layers=1', 'transformer_lm.num_heads=2',
           'optim.updates_per_epoch=2', 'dataset.batch_size=2', 'dataset.segment_duration=1',
           'dataset.valid.num_samples=2', 'dataset.evaluate.num_samples=2', 'dataset.generate.num_samples=2',
           'dataset.generate.batch_size=2']


@pytest.mark.slow  # ~2 min on 2 busy cores: two LM trainings in dora subprocesses, then a resume
def test_tiny_study_writes_report_and_resumes(music_dataset, debug_codec_sig, session_dora_dir, monkeypatch, tmp_path):
    from audiocraft_mmd.train import main as train_main
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))  # the dora subprocesses
    monkeypatch.setattr(train_main.dora, 'dir', session_dora_dir)  # XPs composed in this process
    out = tmp_path / 'lm'
    argv = ['--codecs', 'baseline', '--seeds', '0', '--epochs', '1', '--jobs', '2', '--out', str(out),
            '--codec', f'baseline=//sig/{debug_codec_sig}', '--no-train-codecs', '--no-music-metrics',
            '--heldout', str(music_dataset / 'egs' / 'evaluate'), '--floor', str(music_dataset / 'egs' / 'train'),
            '--num-clips', '2', '--clip-seconds', '1', '--ce-segments', '2', '--gen-batch-size', '2',
            '--set', *TINY_LM, *datasource_overrides(music_dataset)]
    assert main(argv) == 0
    data = json.loads((out / 'results.json').read_text())
    assert [s['status'] for s in data['meta']['statuses']] == ['trained', 'trained']
    summary = data['summary']
    delay, flatten = summary['baseline:delay'], summary['baseline:flatten']
    # flatten: one LM step per token (K = 4 per frame); delay: T + K - 1 steps for T = 50 frames
    assert flatten['forward_passes_per_frame']['mean'] == 4
    assert delay['forward_passes_per_frame']['mean'] == (50 + 3) / 50
    ces = [delay[f'ce_q{k}']['mean'] for k in range(1, 5)]
    assert delay['ce_per_frame']['mean'] == sum(ces) and all(0 < ce < 10 for ce in ces)
    gap = summary['baseline:pair']['gap_nats_per_frame']['mean']
    assert gap == delay['ce_per_frame']['mean'] - flatten['ce_per_frame']['mean']
    unigram = summary['baseline:codec']
    assert 0 < unigram['unigram_per_frame']['mean'] <= 4 * 4.159  # 4 x ln 64
    claims = {c['claim']: c for c in data['claims']}
    assert claims['baseline: flatten makes about K x the forward passes per frame (> 0.9 K)']['verdict'].startswith(
        'direction only (1 seed')
    report = (out / 'report.md').read_text()
    assert '| baseline / delay | 1 |' in report and (out / 'lm_study.png').stat().st_size > 0
    caches = {p.name: p.stat().st_mtime_ns for p in (out / 'cache').iterdir()}
    logs = {p.name: p.stat().st_size for p in (out / 'logs').iterdir()}
    assert len(caches) == 3 and len(logs) == 2  # codec + 2 LMs evaluated; 2 LMs trained
    # again: nothing retrained, nothing re-evaluated, the same numbers
    assert main(argv) == 0
    again = json.loads((out / 'results.json').read_text())
    assert [s['status'] for s in again['meta']['statuses']] == ['done', 'done']
    assert {p.name: p.stat().st_mtime_ns for p in (out / 'cache').iterdir()} == caches
    assert {p.name: p.stat().st_size for p in (out / 'logs').iterdir()} == logs
    assert again['summary'] == summary
