"""`make reproduce`: the plan, the claim verdicts, and a tiny end-to-end run that resumes."""
import json
import math

import pytest

from audiocraft_mmd.reproduce.__main__ import main as reproduce_main
from audiocraft_mmd.reproduce.plan import CHOSEN_WEIGHT, build_plan
from audiocraft_mmd.reproduce.report import compare, mean_std, summarize, with_derived
from conftest import datasource_overrides


def test_plan_shares_the_reference_runs():
    runs = build_plan([0, 1], ['weight', 'alignment', 'streams'])
    assert len(runs) == 4 * 2 + 2 * 2  # the ablations reuse the weight sweep's 1e3 runs
    assert len({run.name for run in runs}) == len(runs)
    parallel = [run for run in runs if run.group == 'alignment']
    assert all(f'losses.mmd={CHOSEN_WEIGHT:g}' in run.overrides and 'mmd.delay=false' in run.overrides
               for run in parallel)
    # Without the weight group, the reference runs are added once per seed.
    alone = build_plan([3], ['streams'])
    assert sorted(run.name for run in alone) == ['streams:residual:seed3', 'weight:1e3:seed3']


def test_unknown_group_is_named():
    with pytest.raises(ValueError, match='kernels'):
        build_plan([0], ['weight', 'kernels'])


def _summary(a, b):
    records = [{'group': 'g', 'label': label, 'seed': i, 'metrics': {'m': v}}
               for label, values in (('a', a), ('b', b)) for i, v in enumerate(values)]
    return summarize(records)


def test_mean_std_is_the_sample_std():
    assert mean_std([1., 3.]) == (2., math.sqrt(2.))
    assert mean_std([5.]) == (5., 0.)


@pytest.mark.parametrize('a,b,expect,verdict', [
    # diff -1, SE = sqrt(0.02/2 + 0.02/2) = 0.141: |z| = 7.1 > 2
    ([1.0, 1.2], [2.0, 2.2], '<', 'held'),
    # diff -0.1, same SE: |z| = 0.71
    ([1.0, 1.2], [1.1, 1.3], '<', 'direction only'),
    ([2.0, 2.2], [1.0, 1.2], '<', 'not held'),
    ([1.0, 1.2], [1.1, 1.3], '=', 'held'),
    ([1.0, 1.2], [2.0, 2.2], '=', 'not held'),
    ([1.0], [2.0], '<', 'direction only (1 seed, no SE)'),
    ([1.0], [2.0], '=', 'undetermined (1 seed, no SE)'),
])
def test_claim_verdicts(a, b, expect, verdict):
    result = compare(_summary(a, b), 'g:a', 'g:b', 'm', expect)
    assert result['verdict'] == verdict
    assert result['diff'] == pytest.approx(sum(a) / len(a) - sum(b) / len(b))


def test_missing_setting_gives_no_claim():
    assert compare(_summary([1.], [2.]), 'g:a', 'g:zzz', 'm', '<') is None


def test_tiny_reproduction_writes_the_report_and_resumes(music_dataset, dora_dir, tmp_path, monkeypatch):
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    out = tmp_path / 'report'
    argv = ['--seeds', '0', '--groups', 'alignment', '--jobs', '2', '--out', str(out), '--max-segments', '8',
            '--manifest', str(music_dataset / 'egs' / 'evaluate'),
            '--set', *datasource_overrides(music_dataset), 'optim.epochs=1', 'optim.updates_per_epoch=2',
            'mmd.num_batches=2', 'dataset.batch_size=2', 'dataset.valid.num_samples=2', 'mmd.valid_batches=1',
            'dataset.evaluate.num_samples=2', 'dataset.evaluate.batch_size=2', 'evaluate.every=1']
    assert reproduce_main(argv) == 0
    data = json.loads((out / 'results.json').read_text())
    assert sorted((r['group'], r['label']) for r in data['runs']) == [('alignment', 'parallel'), ('weight', '1e3')]
    for record in data['runs']:
        metrics = record['metrics']
        assert metrics['n_segments'] == 8
        keys = ('mmd', 'mmd_unbiased', 'tc', 'tc_delay', 'msspec', 'si_snr_db', 'code_entropy')
        assert all(math.isfinite(metrics[k]) for k in keys)
        assert 0 <= metrics['tc'] <= 100
    claim = [c for c in data['claims'] if 'parallel' in c['claim']]
    assert len(claim) == 1 and claim[0]['metric'] == 'tc_delay'
    assert 'delay-aligned MMD gives lower' in (out / 'report.md').read_text()
    assert (out / 'fig2_weight_sweep.png').stat().st_size > 0 and (out / 'mi_per_codebook.png').stat().st_size > 0

    # Second call: nothing retrained, evaluations read from their caches.
    caches = sorted(dora_dir.glob('xps/*/reproduce_eval.json'))
    assert len(caches) == 2
    mtimes = [c.stat().st_mtime_ns for c in caches]
    assert reproduce_main(argv) == 0
    again = json.loads((out / 'results.json').read_text())
    assert [s['status'] for s in again['meta']['statuses']] == ['done', 'done']
    assert [c.stat().st_mtime_ns for c in caches] == mtimes
    assert [r['metrics'] for r in again['runs']] == [r['metrics'] for r in data['runs']]


def test_code_entropy_is_the_mean_over_codebooks():
    metrics = {'entropy_0': 1., 'entropy_1': 3., 'entropy_delay': 9., 'tc': 5.}
    assert summarize([{'group': 'g', 'label': 'a', 'seed': 0, 'metrics': with_derived(metrics)}])[
        'g:a']['code_entropy']['mean'] == 2.


def test_changed_default_is_config_drift(dora_dir, monkeypatch):
    """Dora hashes overrides only: an XP folder trained under an older default must not pass as done."""
    import omegaconf
    from audiocraft_mmd.reproduce.plan import weight_run
    from audiocraft_mmd.reproduce.runner import config_drift, xp_of
    from audiocraft_mmd.train import main
    monkeypatch.setattr(main.dora, 'dir', dora_dir)
    xp = xp_of(weight_run(CHOSEN_WEIGHT, 0), [])
    assert config_drift(xp) == []  # no folder yet
    saved = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(xp.cfg))
    (xp.folder / '.hydra').mkdir(parents=True)
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert config_drift(xp) == []
    saved.mmd.normalize = 'dimension'
    saved.optim.lr = 1.
    omegaconf.OmegaConf.save(saved, xp.folder / '.hydra' / 'config.yaml')
    assert sorted(config_drift(xp)) == ['mmd.normalize', 'optim.lr']
