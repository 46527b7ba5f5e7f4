"""reproduce.claims: seed statistics and claim verdicts, margins derived by hand."""
import math

import pytest

from audiocraft_mmd.reproduce.claims import (ablation_rows, compare, mean_std, paper_claims, summarize,
                                             with_derived)


def _summary(a, b, seeds_a=None, seeds_b=None):
    records = [{'group': 'g', 'label': label, 'seed': seed, 'metrics': {'m': v}}
               for label, values, seeds in (('a', a, seeds_a), ('b', b, seeds_b))
               for seed, v in zip(seeds or range(len(values)), values)]
    return summarize(records)


def test_mean_std_is_the_sample_std():
    assert mean_std([1., 3.]) == (2., math.sqrt(2.))
    assert mean_std([5.]) == (5., 0.)


@pytest.mark.parametrize('a,b,expect,verdict', [
    # Welch: diff -1, SE = sqrt(0.02/2 + 0.02/2) = 0.141: |z| = 7.1 > 2
    ([1.0, 1.2], [2.0, 2.2], '<', 'held'),
    # diff -0.1, same SE: |z| = 0.71
    ([1.0, 1.2], [1.1, 1.3], '<', 'direction only'),
    ([2.0, 2.2], [1.0, 1.2], '<', 'not held'),
    ([1.0, 1.2], [1.1, 1.3], '=', 'held'),
    ([1.0, 1.2], [2.0, 2.2], '=', 'not held'),
    ([1.0], [2.0], '<', 'direction only (1 seed, no SE)'),
    ([1.0], [2.0], '=', 'undetermined (1 seed, no SE)'),
])
def test_unpaired_verdicts(a, b, expect, verdict):
    result = compare(_summary(a, b), 'g:a', 'g:b', 'm', expect, paired=False)
    assert result['verdict'] == verdict and not result['paired']
    assert result['diff'] == pytest.approx(sum(a) / len(a) - sum(b) / len(b))


def test_pairing_removes_the_seed_to_seed_spread():
    # a - b per seed: -0.5, -0.4, -0.6: mean -0.5, std 0.1, paired SE 0.1 / sqrt(3) = 0.0577, z = -8.66.
    # Unpaired: s_a = 1, s_b = sqrt(1.11), SE = sqrt(1/3 + 1.11/3) = 0.839, z = -0.60: direction only.
    a, b = [1.0, 2.0, 3.0], [1.5, 2.4, 3.6]
    paired = compare(_summary(a, b), 'g:a', 'g:b', 'm', '<')
    assert paired['paired'] and paired['n'] == 3
    assert paired['diff'] == pytest.approx(-0.5) and paired['se'] == pytest.approx(0.1 / math.sqrt(3))
    assert paired['z'] == pytest.approx(-8.660, abs=1e-3) and paired['verdict'] == 'held'
    welch = compare(_summary(a, b), 'g:a', 'g:b', 'm', '<', paired=False)
    assert welch['se'] == pytest.approx(math.sqrt(1 / 3 + 1.11 / 3)) and welch['verdict'] == 'direction only'


@pytest.mark.parametrize('x,verdict', [
    # per-seed differences 0.2 - x, 0.2, 0.2 + x: std x, SE x / sqrt(3), z = 0.2 sqrt(3) / x = 2 at x = 0.1732
    (0.18, 'held'),  # z = 1.92: within 2 SE
    (0.17, 'not held'),  # z = 2.04
])
def test_equality_margin_is_two_paired_standard_errors(x, verdict):
    b = [1.0, 2.0, 3.0]
    a = [b[0] + 0.2 - x, b[1] + 0.2, b[2] + 0.2 + x]
    result = compare(_summary(a, b), 'g:a', 'g:b', 'm', '=')
    assert result['z'] == pytest.approx(0.2 * math.sqrt(3) / x, rel=1e-6)
    assert result['verdict'] == verdict


def test_pairs_are_matched_by_seed():
    # a has seeds 0, 1, 2 and b seeds 1, 2: pairs (2.0, 1.0), (3.5, 2.0): differences 1.0, 1.5
    result = compare(_summary([1.0, 2.0, 3.5], [1.0, 2.0], seeds_b=[1, 2]), 'g:a', 'g:b', 'm', '>')
    assert result['n'] == 2 and result['diff'] == pytest.approx(1.25)
    assert result['se'] == pytest.approx(math.sqrt(0.125) / math.sqrt(2))  # std of (1.0, 1.5) = sqrt(0.125)
    assert result['mean_a'] == pytest.approx(2.75) and result['verdict'] == 'held'  # z = 5


def test_missing_setting_gives_no_claim():
    assert compare(_summary([1.], [2.]), 'g:a', 'g:zzz', 'm', '<') is None


def test_code_entropy_is_the_mean_over_codebooks():
    metrics = {'entropy_0': 1., 'entropy_1': 3., 'entropy_delay': 9., 'tc': 5.}
    assert summarize([{'group': 'g', 'label': 'a', 'seed': 0, 'metrics': with_derived(metrics)}])[
        'g:a']['code_entropy']['mean'] == 2.


def test_with_derived_adds_the_liveness_flags():
    got = with_derived({'logmel_corr': 0.8, 'cross_corr': 0.05, 'min_usage': 0.5, 'entropy_0': 1., 'entropy_1': 3.})
    assert got['live'] == 1. and got['code_entropy'] == 2.  # log-mel 0.8 < 0.9: live all the same (rule retired)


def _weights_summary():
    values = {'weight:0': [1.0, 1.1, 1.2], 'weight:1e3': [1.01, 1.12, 1.19], 'weight:1e4': [1.5, 1.7, 1.6],
              'kernels:quadratic': [1.4, 1.5, 1.6], 'trunk:trunk': [2., 2., 2.]}
    records = [{'group': key.split(':')[0], 'label': key.split(':')[1], 'seed': seed, 'metrics': {'msspec': v}}
               for key, vs in values.items() for seed, v in enumerate(vs)]
    return summarize(records)


def test_reconstruction_and_kernel_claims():
    claims = {c['claim']: c for c in paper_claims(_weights_summary())}
    # 1e3 - 0 per seed: 0.01, 0.02, -0.01: mean 0.00667, std 0.0153, SE 0.00882, z = 0.76: held
    assert claims['MSSpec does not move from weight 0 to 1e3']['verdict'] == 'held'
    # 1e4 - 1e3: 0.49, 0.58, 0.41: mean 0.493, std 0.085, SE 0.049, z = 10: held
    assert claims['MSSpec degrades at weight 1e4 (training perturbed)']['verdict'] == 'held'
    # gaussian (1e3) - quadratic: -0.39, -0.38, -0.41: held
    assert claims['gaussian kernel reconstructs better than quadratic (MSSpec)']['verdict'] == 'held'
    assert not any('SI-SNR' in c or 'squared_inverse' in c for c in claims)  # absent metrics / settings: no claim
    rows = ablation_rows(_weights_summary())
    assert [(r['group'], r['metric']) for r in rows] == [('kernels', 'msspec')]
