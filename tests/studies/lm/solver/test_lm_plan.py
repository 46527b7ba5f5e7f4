"""The LM study's plan (solver engine): codec x pattern x seed, and the overrides it owns."""
import pytest

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
