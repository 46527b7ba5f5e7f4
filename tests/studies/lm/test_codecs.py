"""studies.lm.codecs: which codec XP each (codec, seed) of the LM study uses."""
import json

import pytest

from audiocraft_mmd.studies.lm.codecs import parse_codec_args, sigs_from_results


def test_codec_sources(tmp_path):
    assert parse_codec_args(['mmd=//sig/abc', 'baseline@1=def'], seeds=[0, 1]) == {
        ('mmd', 0): 'abc', ('mmd', 1): 'abc', ('baseline', 1): 'def'}
    with pytest.raises(ValueError, match='NAME'):
        parse_codec_args(['weight:0=abc'], seeds=[0])
    results = tmp_path / 'results.json'
    results.write_text(json.dumps({'runs': [
        {'group': 'weight', 'label': '0', 'seed': 0, 'sig': 'a'},
        {'group': 'weight', 'label': '1e2', 'seed': 0, 'sig': 'b'},  # not a codec of the study
        {'group': 'weight', 'label': '1e3', 'seed': 1, 'sig': 'c'},
        {'group': 'alignment', 'label': 'parallel', 'seed': 0, 'sig': 'd'}]}))
    assert sigs_from_results(results) == {('baseline', 0): 'a', ('mmd', 1): 'c', ('mmd_parallel', 0): 'd'}


def test_missing_codecs_train_the_groups_that_make_them():
    from audiocraft_mmd.studies.lm.codecs import reproduce_groups
    assert reproduce_groups(['baseline', 'mmd']) == ['weight']
    assert reproduce_groups(['mmd', 'pvq', 'pvq_dropout_mmd', 'mmd_parallel']) == ['alignment', 'quantizer', 'weight']
