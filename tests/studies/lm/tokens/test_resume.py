"""Resuming the token-LM study from its committed results.json (`studies.lm.tokens.resume`), with no codec on this
machine."""
import json

import pytest

from audiocraft_mmd.environment import REPO_ROOT
from audiocraft_mmd.studies.lm.tokens.__main__ import main
from audiocraft_mmd.studies.lm.vocabulary import RVQ_CODECS as CODECS
from audiocraft_mmd.studies.lm.tokens.resume import check_same_codecs, import_study, run_path

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
    codec4 = next(r for r in _committed()['runs'] if (r['group'], r['label'], r['seed']) == ('mmd', 'codec', 4))
    fingerprint = {'weights_sha256': codec4['weights_sha256']} if 'weights_sha256' in codec4 else {}
    assert codecs['mmd', 4] == {'sig': mmd4['sig'], 'metrics': codec4['metrics'], **fingerprint}


def test_a_retrained_codec_that_measures_otherwise_is_refused():
    imported = {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.25}}}
    check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.25}}})
    check_same_codecs(imported, {('mmd', 4): {'sig': 'other', 'metrics': {'tc_cond_delay': 1.0}}})  # not the same
    with pytest.raises(SystemExit, match=r'mmd seed 4 \(//sig/abc\).*7\.2500001'):
        check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.2500001}}})


def test_fingerprinted_codecs_must_have_the_same_weights():
    imported = {('mmd', 4): {'sig': 'abc', 'weights_sha256': 'f00d', 'metrics': {'tc_cond_delay': 7.25}}}
    check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'weights_sha256': 'f00d', 'metrics': {}}})
    # the same statistics do not make the same weights once both sides carry a fingerprint
    with pytest.raises(SystemExit, match=r"mmd seed 4 \(//sig/abc\).*weights sha256 'beef'.*'f00d'"):
        check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'weights_sha256': 'beef',
                                                  'metrics': {'tc_cond_delay': 7.25}}})
    # a record without one (older studies) falls back on the statistics
    check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.25}}})
    with pytest.raises(SystemExit, match='tc_cond_delay'):
        check_same_codecs(imported, {('mmd', 4): {'sig': 'abc', 'metrics': {'tc_cond_delay': 7.5}}})


def test_resumed_report_reproduces_the_committed_one(tmp_path):
    # under the committed config every LM record answers its key, so nothing trains and no codec (which this
    # machine lacks) is loaded; the report then equals the committed one
    committed = _committed()
    codecs = [c for c in CODECS if any(r['group'] == c for r in committed['runs'])]
    base = ['--resume-from', str(COMMITTED), '--codecs', *codecs, '--out', str(tmp_path),
            '--max-updates', str(committed['config']['max_updates']), '--seeds', *map(str, committed['seeds'])]
    assert main(base) == 0
    assert main([*base, '--stage', 'report']) == 0
    ours, theirs = json.loads((tmp_path / 'results.json').read_text()), committed
    assert ours['claims'] == theirs['claims']
    assert ours['summary'] == theirs['summary']


def test_replay_restores_the_weights_of_a_record_and_refuses_another_run(tmp_path):
    import torch
    from audiocraft_mmd.studies.lm.tokens.__main__ import replay_weights, train_one
    from audiocraft_mmd.studies.lm.tokens.lm import LMConfig
    card = 4
    config = LMConfig(dim=16, num_heads=2, num_layers=1, frames=4, batch_size=8, max_updates=60, eval_every=5,
                      patience=2, warmup=5, lr_drops=1)
    g = torch.Generator().manual_seed(0)
    tokens = {'train': [torch.randint(card, (2, 300), generator=g)], 'card': card,
              'valid': torch.randint(card, (16, 2, 4), generator=g),
              'evaluate': torch.randint(card, (8, 2, 4), generator=g)}
    record = train_one('x', 0, 'delay', 'sig', tokens, config, tmp_path)
    weights = run_path(tmp_path, 'x', 'delay', 0).with_suffix('.pt')
    trained = torch.load(weights, weights_only=True)
    weights.unlink()
    replay_weights(record, tokens, tmp_path)
    replayed = torch.load(weights, weights_only=True)
    assert all(torch.equal(trained[k], replayed[k]) for k in trained)
    weights.unlink()
    other = {**record, 'history': {**record['history'], 'valid_ce': [v + 1e-6 for v in record['history']['valid_ce']]}}
    with pytest.raises(SystemExit, match='x delay seed 0 differs .* history.valid_ce'):
        replay_weights(other, tokens, tmp_path)
    assert not weights.exists()


def test_a_seed_neither_source_has_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"results\.json'\]: no codec run for \[\('baseline', 9\)\]"):
        main(['--resume-from', str(COMMITTED), '--codecs', 'baseline', '--seeds', '9', '--out', str(tmp_path)])
