"""Resuming the token-LM study from its committed results.json (`lm_study.resume`), with no codec on this machine."""
import json
from pathlib import Path

import pytest

from audiocraft_mmd.environment import REPO_ROOT
from audiocraft_mmd.lm_study.__main__ import main
from audiocraft_mmd.lm_study.resume import check_same_codecs, import_study, run_path

COMMITTED = REPO_ROOT / 'docs' / 'lm_study' / 'results.json'


def _committed() -> dict:
    return json.loads(COMMITTED.read_text())


def test_import_writes_the_lm_records_and_keeps_existing_ones(tmp_path):
    kept = run_path(tmp_path, 'baseline', 'delay', 0)
    kept.parent.mkdir(parents=True)
    kept.write_text('{"mine": 1}')
    codecs = import_study(COMMITTED, tmp_path)
    lms = [r for r in _committed()['runs'] if 'history' in r]
    for r in lms[1:]:
        assert json.loads(run_path(tmp_path, r['group'], r['label'], r['seed']).read_text()) == r
    assert json.loads(kept.read_text()) == {'mine': 1}
    mmd4 = next(r for r in lms if (r['group'], r['label'], r['seed']) == ('mmd', 'flatten', 4))
    assert codecs['mmd', 4]['sig'] == mmd4['sig']
    assert codecs['mmd', 4]['metrics']['tc_cond_delay'] == pytest.approx(7.2701766216)


def test_a_retrained_codec_that_measures_otherwise_is_refused():
    imported = {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.25}}}
    check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.25}}})
    check_same_codecs(imported, {('mmd', 4): {'sig': 'other', 'metrics': {'tc_cond_delay': 1.0}}})  # not the same
    with pytest.raises(SystemExit, match=r'mmd seed 4 \(//sig/abc\).*7\.2500001'):
        check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.2500001}}})


def test_resumed_report_reproduces_the_committed_one(tmp_path):
    # seeds 2 and 3: all 8 LMs stopped early under the committed config, so nothing trains and no codec
    # (which this machine lacks) is loaded; the report over seeds 0-4 then equals the committed one
    base = ['--resume-from', str(COMMITTED), '--codecs', 'baseline', 'mmd', '--out', str(tmp_path)]
    assert main([*base, '--seeds', '2', '3']) == 0
    assert main([*base, '--seeds', '0', '1', '2', '3', '4', '--stage', 'report']) == 0
    ours, theirs = json.loads((tmp_path / 'results.json').read_text()), _committed()
    assert ours['claims'] == theirs['claims']
    assert ours['summary'] == theirs['summary']
