"""The LM study's plan and codec sources."""
import json

import pytest

from audiocraft_mmd.studies.lm.codecs import parse_codec_args, sigs_from_results
from audiocraft_mmd.studies.lm.solver.plan import FULL, QUICK, Schedule, build_plan, check_common
from audiocraft_mmd.studies.lm.vocabulary import CODECS

SIGS = {(c, s): f'{c[:3]}{s}' for c in CODECS for s in (0, 1, 2)}


def test_full_plan_is_codec_x_pattern_x_seed_with_paired_codecs():
    runs = build_plan(FULL, SIGS)
    assert len(runs) == 3 * 2 * 2 and len({r.name for r in runs}) == len(runs)  # seeds x codecs x patterns
    # with the opt-in codecs (mmd_parallel, mmd_conditional)
    assert len(build_plan(Schedule(codecs=tuple(CODECS)), SIGS)) == 3 * len(CODECS) * 2
    for run in runs:  # the LM of seed s reads the codec of seed s
        argv = run.argv(['x=1'])
        assert f'compression_model_checkpoint=//sig/{SIGS[run.codec, run.seed]}' in argv
        assert argv[:3] == ['solver=musicgen/musicgen_mmd_cpu', 'device=cpu', 'x=1'] and argv[-1] == f'seed={run.seed}'
    delay, flatten = (r for r in runs if r.codec == 'mmd' and r.seed == 1)
    # same architecture and updates: the two argvs differ by the pattern only
    differences = set(delay.argv()) ^ set(flatten.argv())
    assert differences == {'codebooks_pattern.modeling=delay', 'codebooks_pattern.modeling=unroll'}


def test_quick_plan_and_errors():
    assert len(build_plan(QUICK, SIGS)) == 2 * 2 * 2
    with pytest.raises(ValueError, match=r"no codec XP for \[\('mmd', 5\)\]"):
        build_plan(Schedule(seeds=(5,), codecs=('mmd',)), SIGS)
    with pytest.raises(ValueError, match='unknown'):
        build_plan(Schedule(codecs=('nope',)), SIGS)
    with pytest.raises(ValueError, match='optim.epochs'):
        check_common(['optim.epochs=3'])
    check_common(['optim.updates_per_epoch=3'])


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
