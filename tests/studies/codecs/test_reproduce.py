"""`make reproduce`: a tiny end-to-end run (a trunk, two branches) that writes the report and resumes."""
import json
import math

from audiocraft_mmd.studies.codecs.__main__ import main as reproduce_main
from conftest import datasource_overrides


def test_tiny_reproduction_writes_the_report_and_resumes(music_dataset, dora_dir, tmp_path, monkeypatch):
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    out = tmp_path / 'report'
    argv = ['--seeds', '0', '--groups', 'alignment', '--trunk-epochs', '1', '--branch-epochs', '1', '--jobs', '2',
            '--out', str(out), '--max-segments', '8', '--manifest', str(music_dataset / 'egs' / 'evaluate'),
            '--set', *datasource_overrides(music_dataset), 'optim.updates_per_epoch=2',
            'mmd.num_batches=2', 'dataset.batch_size=2', 'dataset.valid.num_samples=2', 'mmd.valid_batches=1',
            'dataset.evaluate.num_samples=2', 'dataset.evaluate.batch_size=2', 'evaluate.every=1']
    assert reproduce_main(argv) == 0
    data = json.loads((out / 'results.json').read_text())
    assert [(r['group'], r['label']) for r in data['runs']] == [
        ('trunk', 'trunk'), ('alignment', 'parallel'), ('weight', '1e3')]
    statuses = data['meta']['statuses']
    trunk_sig = statuses[0]['sig']
    assert [s['stage'] for s in statuses] == ['trunk', 'branch', 'branch']
    assert all(s['trunk'] == trunk_sig for s in statuses[1:])
    for record in data['runs']:
        metrics = record['metrics']
        assert metrics['n_segments'] == 8
        keys = ('mmd', 'mmd_unbiased', 'tc', 'tc_delay', 'msspec', 'si_snr_db', 'code_entropy', 'logmel_corr',
                'cross_corr', 'min_usage', 'perplexity_0', 'zero_code_change', 'live_cross', 'live_usage', 'live_zero',
                'live')
        assert all(math.isfinite(metrics[k]) for k in keys)
        assert 0 <= metrics['tc'] <= 100 and 0 < metrics['min_usage'] <= 1
        # 8 s of audio give a few musicnn patches, not the 201 a full-rank covariance needs: FAD is left out
        assert 0 < metrics['fad_patches'] < 201 and 'fad_musicnn' not in metrics
    claim = [c for c in data['claims'] if 'parallel' in c['claim']]
    assert len(claim) == 1 and claim[0]['metric'] == 'tc_delay'
    report = (out / 'report.md').read_text()
    assert 'delay-aligned MMD gives lower' in report and 'FAD: left out' in report and '| trunk:trunk | 1 |' in report
    assert (out / 'mi_per_codebook.png').stat().st_size > 0
    # The branch really started from the trunk: its log says it loaded the trunk's checkpoint.
    branch_log = (out / 'logs' / f"{statuses[1]['sig']}.log").read_text()
    assert 'Continuing from provided checkpoint' in branch_log

    # Second call: nothing retrained, evaluations read from their caches.
    caches = sorted(dora_dir.glob('xps/*/reproduce_eval.json'))
    assert len(caches) == 3
    mtimes = [c.stat().st_mtime_ns for c in caches]
    assert reproduce_main(argv) == 0
    again = json.loads((out / 'results.json').read_text())
    assert [s['status'] for s in again['meta']['statuses']] == ['done', 'done', 'done']
    assert [c.stat().st_mtime_ns for c in caches] == mtimes
    assert [r['metrics'] for r in again['runs']] == [r['metrics'] for r in data['runs']]
