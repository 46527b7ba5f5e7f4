"""reproduce.claims: seed statistics and claim verdicts."""
import math

import pytest

from audiocraft_mmd.reproduce.claims import compare, mean_std, summarize, with_derived


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


def test_code_entropy_is_the_mean_over_codebooks():
    metrics = {'entropy_0': 1., 'entropy_1': 3., 'entropy_delay': 9., 'tc': 5.}
    assert summarize([{'group': 'g', 'label': 'a', 'seed': 0, 'metrics': with_derived(metrics)}])[
        'g:a']['code_entropy']['mean'] == 2.
