"""Histogram (plug-in) estimators of the statistical dependence between codebooks.

All estimators take integer codes ``[B, K, T]`` as produced by ``CompressionModel.encode``
(B items, K codebooks, T frames, values in ``[0, cardinality)``). A *frame* is one time step
of one item, i.e. one joint symbol ``(c_0, ..., c_{K-1})``; the N = B * T frames are the
samples of the empirical distributions. Entropies are in nats (natural logarithms).

Quantities:

- pairwise total correlation, the paper's metric (section 5.1, Fig. 2, Tables 3-4): for two
  codebooks A and B, ``I(A; B) / H(A, B)`` in percent. For two variables the total correlation
  equals the mutual information. The paper's protocol averages it over 5 distinct couples of
  codebooks drawn at random (`total_correlation`); `pairwise_total_correlation` gives all couples.
- per-codebook mutual information with all the other codebooks (Appendix E):
  ``I(C_k; C_{-k}) = H(C_k) + H(C_{-k}) - H(C_0, ..., C_{K-1})`` in nats
  (`codebook_mutual_information`). The joint entropies are computed by *sparse* counting of the
  joint states that actually occur (never a dense ``M ** (K - 1)`` table).
- the delay-aligned variant (``delay=True``): codebook k is shifted by k frames as in MusicGen's
  delay pattern, so that an aligned frame holds ``(c_0[t], c_1[t - 1], ..., c_{K-1}[t - K + 1])``,
  the K tokens that the language model predicts *in parallel* at one step, i.e. the ones for which
  the factorized model assumes independence. See `delay_align`.

Every quantity is reported with its Miller-Madow corrected counterpart
(``H_MM = H_plugin + (m - 1) / (2 N)`` with m the number of non-empty bins) and with the number of
frames N it was estimated from.

What the numbers can and cannot show. The plug-in estimate of the mutual information is biased
upwards, by about ``(m_AB - m_A - m_B + 1) / (2 N)`` nats when N is much larger than the number of
joint bins; with 2048 x 2048 joint bins, N = 250k frames is *far* from that regime and the
estimate is dominated by bias: each observed joint state is seen about once, ``H(A, B)`` saturates
at ``log N`` and the plug-in MI of two *independent* uniform codebooks is about
``2 log 2048 - log 250k = 2.8`` nats (for two codebooks whose true MI is 1.68 nats it is 3.91 nats).
Miller-Madow only removes the first-order term and barely helps there (it assumes N >> m).
Consequently:

- absolute values are not estimates of the true dependence; a few percent of "total correlation"
  can be pure estimation bias;
- the bias depends on N, on the codebook usage and on the cardinality, so two models (or two
  checkpoints) may only be compared when evaluated on the *same number of frames* (ideally the
  same audio) and the same cardinality; a lower value at equal N and similar usage/perplexity is
  evidence of lower dependence, a lower value at different N is not;
- the percentage divides by ``H(A, B)``, which is itself biased downwards at small N;
- a constant codebook pair has ``H(A, B) = 0``: its percentage is 0 by convention.

This is why the sample size (``n_frames``) and the bias-corrected value (``*_mm``) are reported
next to every number, and why ``usage`` / ``perplexity`` of each codebook are reported as well.
"""

import math
import typing as tp

import torch

from ..delay_pattern import delay_align
from .joint_states import (JointStates, aggregate_counts, codes_to_frames, count_joint_states, num_key_words,
                           pack_codes, states_from_codes, unpack_keys, validate_codes)

__all__ = ['JointStates', 'aggregate_counts', 'codes_to_frames', 'count_joint_states', 'delay_align',
           'num_key_words', 'pack_codes', 'states_from_codes', 'unpack_keys', 'validate_codes']


# ----------------------------------------------------------------------------------------------
# Entropy of a histogram.


def entropy_from_counts(counts: torch.Tensor) -> tp.Tuple[float, float]:
    """Plug-in and Miller-Madow entropies (nats) of a histogram.

    Args:
        counts (torch.Tensor): counts of any shape (zeros allowed).
    Returns:
        tuple of float: ``(H_plugin, H_MM)`` with ``H_MM = H_plugin + (m - 1) / (2 N)``,
            m the number of non-empty bins and N the total count. NaN for an empty histogram.
    """
    c = counts[counts > 0].double()
    if c.numel() == 0:
        return math.nan, math.nan
    n = c.sum()
    # H = log N - sum(c log c) / N: one pass, no division of every bin.
    h = float(torch.log(n) - (c * torch.log(c)).sum() / n)
    h = max(h, 0.0)  # clamp -1e-16 round-off of a single-bin histogram
    return h, h + (c.numel() - 1) / (2 * float(n))


# ----------------------------------------------------------------------------------------------
# Statistics of a sparse joint-state histogram. Both the one-shot functions below and the
# streaming metric (codebook_independence.py) go through these, so they agree exactly.


def sample_pairs(num_codebooks: int, num_pairs: int = 5, seed: int = 0) -> tp.List[tp.Tuple[int, int]]:
    """Draw distinct unordered couples of codebooks, reproducibly (the paper's protocol).

    Args:
        num_codebooks (int): K.
        num_pairs (int): Number of couples; all ``K (K - 1) / 2`` couples if there are not more.
        seed (int): Seed of the draw.
    Returns:
        list of tuple: sorted ``(i, j)`` couples with ``i < j``.
    """
    all_pairs = [(i, j) for i in range(num_codebooks) for j in range(i + 1, num_codebooks)]
    if num_pairs >= len(all_pairs):
        return all_pairs
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(all_pairs), generator=generator)[:num_pairs]
    return sorted(all_pairs[int(i)] for i in chosen)


def _percent(mi: float, joint_entropy: float) -> float:
    # A constant pair has H(A, B) = 0 and no measurable dependence: 0 % by convention.
    return 100.0 * mi / joint_entropy if joint_entropy > 0 else 0.0


def _marginal_counts(digits: torch.Tensor, counts: torch.Tensor, cardinality: int) -> torch.Tensor:
    out = torch.zeros(cardinality, dtype=torch.long, device=digits.device)
    return out.index_add_(0, digits, counts)


def pair_information(digits_a: torch.Tensor, digits_b: torch.Tensor, counts: torch.Tensor,
                     cardinality: int) -> tp.Dict[str, float]:
    """Mutual information of two codebooks from (weighted) joint observations.

    Args:
        digits_a (torch.Tensor): [U] codes of the first codebook.
        digits_b (torch.Tensor): [U] codes of the second codebook.
        counts (torch.Tensor): [U] number of frames of each observation.
        cardinality (int): Codebook size M.
    Returns:
        dict: ``mi``, ``joint_entropy``, ``tc`` (percent) and their ``*_mm`` Miller-Madow versions.
    """
    h_a, h_a_mm = entropy_from_counts(_marginal_counts(digits_a, counts, cardinality))
    h_b, h_b_mm = entropy_from_counts(_marginal_counts(digits_b, counts, cardinality))
    _, joint = aggregate_counts((digits_a * cardinality + digits_b)[:, None], counts)
    h_ab, h_ab_mm = entropy_from_counts(joint)
    mi, mi_mm = h_a + h_b - h_ab, h_a_mm + h_b_mm - h_ab_mm
    return {'mi': mi, 'mi_mm': mi_mm, 'joint_entropy': h_ab, 'joint_entropy_mm': h_ab_mm,
            'tc': _percent(mi, h_ab), 'tc_mm': _percent(mi_mm, h_ab_mm)}


def _mean_std(values: tp.Sequence[float]) -> tp.Tuple[float, float]:
    if not values:
        return math.nan, math.nan
    t = torch.tensor(values, dtype=torch.float64)
    # Sample std (Bessel) over the couples; 0 for a single couple.
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def pairs_information(states: JointStates, pairs: tp.Sequence[tp.Tuple[int, int]]
                      ) -> tp.List[tp.Dict[str, float]]:
    """`pair_information` for each couple ``(i, j)`` of ``pairs``."""
    digits = states.digits()
    return [pair_information(digits[i], digits[j], states.counts, states.cardinality) for i, j in pairs]


def tc_summary(states: JointStates, pairs: tp.Sequence[tp.Tuple[int, int]],
               infos: tp.Optional[tp.Sequence[tp.Dict[str, float]]] = None) -> tp.Dict[str, tp.Any]:
    """The paper's protocol on given couples: mean and std of the pairwise percentages.

    Args:
        states (JointStates): sparse joint-state histogram.
        pairs (list of tuple): couples of codebooks.
        infos (list of dict, optional): precomputed `pair_information` of each couple.
    Returns:
        dict: ``mean``, ``std``, ``values`` (percent, plug-in), ``mean_mm``, ``std_mm``, ``values_mm``
            (Miller-Madow), ``mi`` / ``mi_mm`` (nats, per couple), ``pairs`` and ``n_frames``.
    """
    if infos is None:
        infos = pairs_information(states, pairs)
    values = [info['tc'] for info in infos]
    values_mm = [info['tc_mm'] for info in infos]
    mean, std = _mean_std(values)
    mean_mm, std_mm = _mean_std(values_mm)
    return {'mean': mean, 'std': std, 'values': values,
            'mean_mm': mean_mm, 'std_mm': std_mm, 'values_mm': values_mm,
            'mi': [info['mi'] for info in infos], 'mi_mm': [info['mi_mm'] for info in infos],
            'pairs': [tuple(p) for p in pairs], 'n_frames': states.n_frames}


def all_pairs_information(states: JointStates) -> tp.Dict[tp.Tuple[int, int], tp.Dict[str, float]]:
    """`pair_information` of every couple ``(i, j)``, ``i < j``."""
    K = states.num_codebooks
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
    return dict(zip(pairs, pairs_information(states, pairs)))


def tc_matrices(states: JointStates, infos: tp.Optional[tp.Dict[tp.Tuple[int, int], tp.Dict[str, float]]] = None
                ) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """[K, K] float64 matrices of pairwise total correlations (percent), plug-in and Miller-Madow.

    The diagonal is 100 %: ``I(A; A) = H(A) = H(A, A)`` (it is not estimated).

    Args:
        states (JointStates): sparse joint-state histogram.
        infos (dict, optional): precomputed `all_pairs_information`.
    """
    K = states.num_codebooks
    if infos is None:
        infos = all_pairs_information(states)
    matrix = torch.full((K, K), 100.0, dtype=torch.float64)
    matrix_mm = matrix.clone()
    for (i, j), info in infos.items():
        matrix[i, j] = matrix[j, i] = info['tc']
        matrix_mm[i, j] = matrix_mm[j, i] = info['tc_mm']
    return matrix, matrix_mm


def codebook_statistics(states: JointStates) -> tp.Dict[str, torch.Tensor]:
    """Per-codebook statistics of a joint-state histogram.

    Returns:
        dict of [K] float64 tensors: ``mi`` / ``mi_mm`` = ``I(C_k; C_{-k})`` in nats (plug-in /
            Miller-Madow), ``entropy`` / ``entropy_mm`` = ``H(C_k)``, ``perplexity`` = ``exp H(C_k)``,
            ``usage`` = fraction of the M entries used at least once; and scalars ``joint_entropy``,
            ``total_correlation`` = ``sum_k H(C_k) - H(C_all)`` (eq. 2 of the paper, nats) with
            their ``*_mm`` versions.
    """
    K, M = states.num_codebooks, states.cardinality
    digits = states.digits()
    h_all, h_all_mm = entropy_from_counts(states.counts)
    out: tp.Dict[str, tp.List[float]] = {name: [] for name in
                                         ['mi', 'mi_mm', 'entropy', 'entropy_mm', 'perplexity', 'usage']}
    for k in range(K):
        marginal = _marginal_counts(digits[k], states.counts, M)
        h_k, h_k_mm = entropy_from_counts(marginal)
        others = torch.cat([digits[:k], digits[k + 1:]], dim=0)
        _, others_counts = aggregate_counts(pack_codes(others, M), states.counts)
        h_o, h_o_mm = entropy_from_counts(others_counts)
        out['mi'].append(h_k + h_o - h_all)
        out['mi_mm'].append(h_k_mm + h_o_mm - h_all_mm)
        out['entropy'].append(h_k)
        out['entropy_mm'].append(h_k_mm)
        out['perplexity'].append(math.exp(h_k))
        out['usage'].append(float((marginal > 0).sum()) / M)
    stats = {name: torch.tensor(values, dtype=torch.float64) for name, values in out.items()}
    stats['joint_entropy'] = torch.tensor(h_all, dtype=torch.float64)
    stats['joint_entropy_mm'] = torch.tensor(h_all_mm, dtype=torch.float64)
    stats['total_correlation'] = stats['entropy'].sum() - h_all
    stats['total_correlation_mm'] = stats['entropy_mm'].sum() - h_all_mm
    return stats


# ----------------------------------------------------------------------------------------------
# One-shot public API.


def total_correlation(codes: torch.Tensor, cardinality: int, num_pairs: int = 5, seed: int = 0,
                      delay: bool = False) -> tp.Dict[str, tp.Any]:
    """Pairwise total correlation averaged over random couples of codebooks (the paper's metric).

    For each couple (A, B), ``I(A; B) / H(A, B)`` in percent (plug-in, natural logs); couples are
    drawn with `sample_pairs` (all of them if ``K (K - 1) / 2 <= num_pairs``).

    Args:
        codes (torch.Tensor): [B, K, T] integer codes in ``[0, cardinality)``.
        cardinality (int): Codebook size M.
        num_pairs (int): Number of couples (5 in the paper).
        seed (int): Seed of the draw of the couples.
        delay (bool): Estimate on delay-aligned frames (see `delay_align`).
    Returns:
        dict: ``mean``, ``std`` (sample std over couples), ``values`` (percent, per couple),
            ``pairs``, ``n_frames``, the Miller-Madow counterparts ``mean_mm``, ``std_mm``,
            ``values_mm``, and the per-couple mutual information ``mi`` / ``mi_mm`` (nats).
    """
    states = states_from_codes(codes, cardinality, delay=delay)
    return tc_summary(states, sample_pairs(states.num_codebooks, num_pairs, seed))


def pairwise_total_correlation(codes: torch.Tensor, cardinality: int, delay: bool = False,
                               miller_madow: bool = False) -> torch.Tensor:
    """Total correlation of every couple of codebooks, in percent of the joint entropy.

    Args:
        codes (torch.Tensor): [B, K, T] integer codes in ``[0, cardinality)``.
        cardinality (int): Codebook size M.
        delay (bool): Estimate on delay-aligned frames.
        miller_madow (bool): Use Miller-Madow corrected entropies instead of plug-in ones.
    Returns:
        torch.Tensor: [K, K] float64 symmetric matrix; the diagonal is set to 100 %.
    """
    matrix, matrix_mm = tc_matrices(states_from_codes(codes, cardinality, delay=delay))
    return matrix_mm if miller_madow else matrix


def codebook_mutual_information(codes: torch.Tensor, cardinality: int, delay: bool = False) -> torch.Tensor:
    """Mutual information between each codebook and all the other ones (Appendix E), plug-in.

    ``I(C_k; C_{-k}) = H(C_k) + H(C_{-k}) - H(C_all)``, the joint entropies from sparse counts
    of the observed joint states. See `codebook_statistics` for the Miller-Madow version.

    Args:
        codes (torch.Tensor): [B, K, T] integer codes in ``[0, cardinality)``.
        cardinality (int): Codebook size M.
        delay (bool): Estimate on delay-aligned frames.
    Returns:
        torch.Tensor: [K] float64, nats.
    """
    return codebook_statistics(states_from_codes(codes, cardinality, delay=delay))['mi']


def independence_report(states: JointStates, pairs: tp.Sequence[tp.Tuple[int, int]]) -> tp.Dict[str, tp.Any]:
    """Everything about one joint-state histogram, JSON-friendly (lists and floats).

    Args:
        states (JointStates): sparse joint-state histogram.
        pairs (list of tuple): couples for the paper's protocol.
    Returns:
        dict: ``n_frames``, ``tc`` (see `tc_summary`), ``matrix`` / ``matrix_mm`` ([K][K] percent)
            and the per-codebook lists of `codebook_statistics`.
    """
    report: tp.Dict[str, tp.Any] = {'n_frames': states.n_frames}
    if states.n_frames == 0:
        return report
    infos = all_pairs_information(states)  # the couples of the protocol are among them
    report['tc'] = tc_summary(states, pairs, [infos[tuple(p)] for p in pairs])
    report['tc']['pairs'] = [list(p) for p in report['tc']['pairs']]
    matrix, matrix_mm = tc_matrices(states, infos)
    report['matrix'], report['matrix_mm'] = matrix.tolist(), matrix_mm.tolist()
    for name, value in codebook_statistics(states).items():
        report[name] = value.tolist()
    return report
