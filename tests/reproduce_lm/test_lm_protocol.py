"""The LM study's evaluation protocol: which fields decide which cached evaluation."""
import dataclasses

from audiocraft_mmd.reproduce_lm.evaluation import LM_ONLY_FIELDS, LMProtocol


def test_lm_only_fields_do_not_invalidate_codec_and_floor_evaluations():
    base = LMProtocol(heldout='egs/evaluate', floor='egs/train')
    fewer = dataclasses.replace(base, flatten_clips=16, timing_clips=8)
    assert fewer.key() != base.key(), "an LM evaluated with fewer flatten clips is another LM evaluation"
    assert fewer.reference_key() == base.reference_key()
    assert not set(LM_ONLY_FIELDS) & set(base.reference_key())
    # every other field is in both keys: a change of, e.g., the clip length re-evaluates the codecs too
    longer = dataclasses.replace(base, clip_seconds=4.0)
    assert longer.reference_key() != base.reference_key() and longer.key() != base.key()
