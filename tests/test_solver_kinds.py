"""solver_kinds: every solver we register has its kind, and the kinds name nothing we do not register
(but audiocraft's `lm` alias, whose old checkpoints are LMs)."""


def test_the_registry_is_the_solver_kinds():
    from audiocraft_mmd.solver_kinds import COMPRESSION_SOLVERS, LM_CHECKPOINT_SOLVERS, LM_SOLVERS
    from audiocraft_mmd.solvers.builders import SOLVERS
    assert sorted(SOLVERS) == sorted(COMPRESSION_SOLVERS + LM_SOLVERS)
    assert not set(COMPRESSION_SOLVERS) & set(LM_SOLVERS)
    assert set(LM_CHECKPOINT_SOLVERS) - set(SOLVERS) == {'lm'}


def test_audiocraft_builds_the_lm_alias_as_its_musicgen_solver():
    import inspect
    from audiocraft.solvers import builders
    assert "'lm': MusicGenSolver" in inspect.getsource(builders.get_solver)
