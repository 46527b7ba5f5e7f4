"""Total correlation of the codebooks *given the past* (issue #19): what `mmd.shuffle: conditional` lowers.

``TC(C | S) = sum_s p(s) TC(C | S = s)``, with ``TC(C | S = s) = sum_k H(C_k | s) - H(C_0, ..., C_{K-1} | s)``
(eq. 2 of the paper, in nats) computed on the frames of stratum s, and S the stratum the conditional MMD
shuffles within (`audiocraft_mmd.losses.estimators.conditional.past_strata`: the first codebook's code in the previous
frame). It is 0 exactly when the codebooks are independent given S, whatever their marginal dependence
(which `codebook_statistics`' ``total_correlation`` measures on the same frames, reported next to it).

Bias (see `information`): within each stratum the plug-in estimate is biased upwards; for large counts
``2 N TC(C | S)`` is the G statistic of conditional independence, about chi-square with
``sum_s (prod_k m_k(s) - 1 - sum_k (m_k(s) - 1))`` degrees of freedom (m_k(s): codes of codebook k seen
in stratum s) when the codebooks are independent given S. Compare models at the same number of frames.
The Miller-Madow version applies the correction within each stratum (the stratum weights make it the
correction of the conditional entropies ``H(. | S) = H(., S) - H(S)``).
"""
import typing as tp

import torch

from ..losses.estimators.conditional import NO_PAST, past_strata
from .information import codebook_statistics, count_joint_states, delay_align, validate_codes
from .joint_states import JointStates, codes_to_frames


def _total_correlation(frames: torch.Tensor, cardinality: int) -> tp.Tuple[float, float]:
    """Plug-in and Miller-Madow total correlation (nats) of frames [K, N]."""
    keys, counts = count_joint_states(frames, cardinality)
    stats = codebook_statistics(JointStates(keys, counts, frames.shape[0], cardinality))
    return float(stats['total_correlation']), float(stats['total_correlation_mm'])


def conditional_total_correlation(codes: torch.Tensor, cardinality: int, delay: bool = True
                                  ) -> tp.Dict[str, float]:
    """Total correlation of the codebooks within strata of the past, averaged with the stratum weights.

    Args:
        codes (torch.Tensor): [B, K, T] integer codes in ``[0, cardinality)``.
        cardinality (int): Codebook size M.
        delay (bool): Frames are delay-aligned (what a delay-pattern LM predicts in parallel), else parallel.
    Returns:
        dict: ``tc_cond`` / ``tc_cond_mm`` (nats, plug-in / Miller-Madow), ``tc`` / ``tc_mm`` (the marginal
            total correlation of the same frames), ``n_frames`` (frames with a past) and ``n_strata``.
    """
    validate_codes(codes, cardinality)
    strata = past_strata(codes, delay)
    frames = codes_to_frames(delay_align(codes) if delay else codes)  # [K, N], same order as strata
    has_past = strata != NO_PAST
    frames, strata = frames[:, has_past], strata[has_past]
    n = strata.numel()
    if n == 0:
        raise ValueError(f"no frame with a past to estimate from (codes of shape {tuple(codes.shape)}).")
    values, inverse = torch.unique(strata, return_inverse=True)
    cond, cond_mm = 0., 0.
    for s in range(values.numel()):
        in_stratum = frames[:, inverse == s]
        tc, tc_mm = _total_correlation(in_stratum, cardinality)
        weight = in_stratum.shape[1] / n
        cond, cond_mm = cond + weight * tc, cond_mm + weight * tc_mm
    tc, tc_mm = _total_correlation(frames, cardinality)
    return {'tc_cond': cond, 'tc_cond_mm': cond_mm, 'tc': tc, 'tc_mm': tc_mm, 'n_frames': float(n),
            'n_strata': float(values.numel())}
