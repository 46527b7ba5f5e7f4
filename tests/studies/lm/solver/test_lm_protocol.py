"""The LM study's evaluation protocol: which fields decide which cached evaluation."""
import dataclasses

from audiocraft_mmd.studies.lm.solver.evaluation import LM_ONLY_FIELDS, LMProtocol


def test_lm_only_fields_do_not_invalidate_codec_and_floor_evaluations():
    base = LMProtocol(heldout='egs/evaluate', floor='egs/train')
    fewer = dataclasses.replace(base, flatten_clips=16, timing_clips=8)
    assert fewer.key() != base.key(), "an LM evaluated with fewer flatten clips is another LM evaluation"
    assert fewer.reference_key() == base.reference_key()
    assert not set(LM_ONLY_FIELDS) & set(base.reference_key())
    # every other field is in both keys: a change of, e.g., the clip length re-evaluates the codecs too
    longer = dataclasses.replace(base, clip_seconds=4.0)
    assert longer.reference_key() != base.reference_key() and longer.key() != base.key()


def test_cache_keys_hold_data_paths_relative_to_the_repository(monkeypatch):
    """A git worktree or clone at another path evaluates the same data: its cached evaluations must match
    (they did not, and a worktree re-ran an hour of LM evaluations). Data outside the repository keeps its path."""
    from audiocraft_mmd import environment
    from audiocraft_mmd.studies.codecs.evaluation import EvalProtocol
    keys = []
    for root in ('/checkouts/main', '/checkouts/worktree'):
        monkeypatch.setattr(environment, 'REPO_ROOT', environment.Path(root))
        lm = LMProtocol(heldout=f'{root}/dataset/egs/evaluate', floor=f'{root}/dataset/egs/train')
        codec = EvalProtocol(manifest=f'{root}/dataset/egs/evaluate')
        keys.append((lm.key(), lm.reference_key(), codec.key()))
    assert keys[0] == keys[1]
    assert keys[0][0]['heldout'] == str(environment.Path('dataset/egs/evaluate'))
    outside = LMProtocol(heldout='/data/evaluate', floor='/data/train')
    assert outside.key()['heldout'] == '/data/evaluate'
