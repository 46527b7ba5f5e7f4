"""Total correlation given the past (`metrics.conditional_information`): exact values on balanced codes, and
~0 / > 0 on the synthetic codes of `conftest.past_structured_codes` with a margin from the G-test."""
import math

import pytest
import torch

from audiocraft_mmd.metrics import conditional_total_correlation

from conftest import past_structured_codes

K, M, N_ITEMS = 3, 4, 20000


def _parallel_items(previous_first: list, rows: list) -> torch.Tensor:
    """Items of T = 2 frames: frame 0 holds the stratum in codebook 0, frame 1 the row."""
    codes = torch.zeros(len(rows), len(rows[0]), 2, dtype=torch.long)
    codes[:, 0, 0] = torch.tensor(previous_first)
    codes[:, :, 1] = torch.tensor(rows)
    return codes


def test_exact_values_on_balanced_codes():
    # the row copies its stratum: independent (constant) given it, ln 2 of total correlation marginally
    follows = conditional_total_correlation(_parallel_items([0, 1] * 4, [[0, 0], [1, 1]] * 4), 2, delay=False)
    assert follows['tc_cond'] == pytest.approx(0., abs=1e-12)
    assert follows['tc'] == pytest.approx(math.log(2), rel=1e-12)
    assert follows['n_frames'] == 8 and follows['n_strata'] == 2, "frame 0 has no past: left out"
    # the codebooks copy each other within every stratum: ln 2 given the past too
    copies = conditional_total_correlation(_parallel_items([0] * 4 + [1] * 4, [[0, 0], [1, 1]] * 4), 2, delay=False)
    assert copies['tc_cond'] == pytest.approx(math.log(2), rel=1e-12)


def _g_test_bound(n_strata: int) -> float:
    """Largest plug-in TC(C | S) of N frames of codebooks independent given S, with probability 1 - 1e-6.

    Given S, 2 N TC(C | S) is the G statistic of conditional independence, asymptotically chi-square with
    df = S (M^K - 1 - K (M - 1)) degrees of freedom (mean df / (2 N): 0.0054 here, measured 0.0053). df counts
    every cell; the rarest ones (expected count < 1 here) are often unobserved and then add no degree of
    freedom to the plug-in estimate, so the full df errs on the large side.
    Laurent-Massart: P(chi2_df >= df + 2 sqrt(df x) + 2 x) <= exp(-x), x = ln(1e6).
    """
    df = n_strata * (M ** K - 1 - K * (M - 1))
    x = math.log(1e6)
    return (df + 2 * math.sqrt(df * x) + 2 * x) / (2 * N_ITEMS)


@pytest.mark.parametrize('delay', [True, False])
def test_zero_given_the_past_positive_when_dependent(delay):
    independent = conditional_total_correlation(past_structured_codes(N_ITEMS, K, M, 'independent', delay, 0), M,
                                                delay=delay)
    if delay:  # every aligned frame has a past; parallel: frame 0 of each item has none
        assert independent['n_frames'] == N_ITEMS
    bound = _g_test_bound(int(independent['n_strata']))
    assert 0. <= independent['tc_cond'] <= bound, (independent, bound)
    assert abs(independent['tc_cond_mm']) <= bound
    assert independent['tc'] >= 10 * bound, "dependent marginally"
    dependent = conditional_total_correlation(past_structured_codes(N_ITEMS, K, M, 'dependent', delay, 0), M,
                                              delay=delay)
    assert dependent['tc_cond'] >= 10 * bound, (dependent, bound)
