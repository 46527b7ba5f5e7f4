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

# int64 keys: keep one bit of headroom below 2 ** 63 so products and sums never overflow.
_MAX_KEY = 2 ** 62


def validate_codes(codes: torch.Tensor, cardinality: int, min_codebooks: int = 2) -> None:
    """Check that ``codes`` is an integer tensor ``[B, K, T]`` with values in ``[0, cardinality)``.

    Args:
        codes (torch.Tensor): [B, K, T] integer codes.
        cardinality (int): Codebook size M.
        min_codebooks (int): Smallest admissible K.
    Raises:
        ValueError: naming the offending shape, dtype or value.
    """
    if not isinstance(codes, torch.Tensor):
        raise ValueError(f"codes must be a torch.Tensor [B, K, T], got {type(codes).__name__}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor [B, K, T], got dtype {codes.dtype}")
    if codes.dim() != 3:
        raise ValueError(f"codes must have shape [B, K, T], got shape {tuple(codes.shape)}")
    if int(cardinality) < 1:
        raise ValueError(f"cardinality must be >= 1, got {cardinality}")
    if codes.shape[1] < min_codebooks:
        raise ValueError(f"at least {min_codebooks} codebooks are needed, got K={codes.shape[1]} "
                         f"(codes of shape {tuple(codes.shape)})")
    if codes.numel() == 0:
        return
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= cardinality:
        bad = low if low < 0 else high
        raise ValueError(f"code value {bad} is out of range [0, {cardinality}) "
                         f"(codes of shape {tuple(codes.shape)})")


def delay_align(codes: torch.Tensor) -> torch.Tensor:
    """Apply MusicGen's delay pattern and keep only the frames free of padding.

    Codebook k is delayed by k frames, so aligned frame t holds
    ``(c_0[t], c_1[t - 1], ..., c_{K-1}[t - K + 1])``: the tokens predicted in parallel at one
    language model step. Each item of the batch is its own sequence (no alignment across items).

    Args:
        codes (torch.Tensor): [B, K, T] codes.
    Returns:
        torch.Tensor: [B, K, T'] with ``out[:, k, j] = codes[:, k, j + (K - 1) - k]`` and
            ``T' = max(T - K + 1, 0)``.
    """
    B, K, T = codes.shape
    length = max(T - K + 1, 0)
    return torch.stack([codes[:, k, K - 1 - k: K - 1 - k + length] for k in range(K)], dim=1)


def codes_to_frames(codes: torch.Tensor) -> torch.Tensor:
    """Flatten the batch and time dimensions: ``[B, K, T] -> [K, B * T]`` (int64)."""
    return codes.transpose(0, 1).reshape(codes.shape[1], -1).long()


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
# Sparse joint-state counting. A joint state of several codebooks is packed into int64 keys
# with a mixed radix of base M. When the K digits do not fit into 62 bits, the key spans W
# int64 words ([N, W]); counting stays exact (no hashing, hence no collisions).


def digits_per_word(cardinality: int) -> int:
    """Number of base-``cardinality`` digits that fit in one int64 key word (below 2 ** 62)."""
    if cardinality <= 1:
        return 62
    return max(1, int(math.floor(62 / math.log2(cardinality) + 1e-9)))


def num_key_words(num_codebooks: int, cardinality: int) -> int:
    """Number of int64 words W needed to pack ``num_codebooks`` digits."""
    return max(1, -(-num_codebooks // digits_per_word(cardinality)))


def pack_codes(frames: torch.Tensor, cardinality: int) -> torch.Tensor:
    """Pack joint states into int64 keys (mixed radix, base M, codebook 0 least significant).

    Args:
        frames (torch.Tensor): [K, N] codes in ``[0, cardinality)``.
        cardinality (int): Codebook size M.
    Returns:
        torch.Tensor: [N, W] int64 keys, ``W = num_key_words(K, M)``.
    """
    K, N = frames.shape
    per_word = digits_per_word(cardinality)
    words = []
    for start in range(0, max(K, 1), per_word):
        key = torch.zeros(N, dtype=torch.long, device=frames.device)
        for j, k in enumerate(range(start, min(start + per_word, K))):
            key += frames[k].long() * (cardinality ** j)
        words.append(key)
    return torch.stack(words, dim=1)


def unpack_keys(keys: torch.Tensor, num_codebooks: int, cardinality: int) -> torch.Tensor:
    """Inverse of `pack_codes`.

    Args:
        keys (torch.Tensor): [N, W] int64 keys.
        num_codebooks (int): K.
        cardinality (int): Codebook size M.
    Returns:
        torch.Tensor: [K, N] int64 codes.
    """
    per_word = digits_per_word(cardinality)
    rows = []
    for k in range(num_codebooks):
        word = keys[:, k // per_word]
        rows.append(torch.div(word, cardinality ** (k % per_word), rounding_mode='floor') % cardinality)
    return torch.stack(rows, dim=0)


def unique_rows(keys: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of ``[N, W]`` int64 keys, and for each input row the index of its row.

    ``torch.unique(dim=0)`` is ~100x slower than the 1-D sort-based unique, so multi-word keys
    are ranked word by word: the rank of the prefix times the number of distinct values of the
    next word (both < N) is again a 1-D int64 key.

    Args:
        keys (torch.Tensor): [N, W] int64 keys.
    Returns:
        tuple of torch.Tensor: ``[U, W]`` distinct keys (sorted for W == 1) and ``[N]`` inverse.
    """
    if keys.shape[1] == 1:
        uniq, inverse = torch.unique(keys[:, 0], return_inverse=True)
        return uniq[:, None], inverse
    _, rank = torch.unique(keys[:, 0], return_inverse=True)
    for w in range(1, keys.shape[1]):
        values, word_rank = torch.unique(keys[:, w], return_inverse=True)
        _, rank = torch.unique(rank * values.numel() + word_rank, return_inverse=True)
    num = int(rank.max()) + 1 if rank.numel() else 0
    first = torch.zeros(num, dtype=torch.long, device=keys.device)
    first.scatter_(0, rank, torch.arange(rank.numel(), device=keys.device))
    return keys[first], rank


def aggregate_counts(keys: torch.Tensor, counts: tp.Optional[torch.Tensor] = None
                     ) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Sum the counts of identical keys (sort-based, no dense table).

    Args:
        keys (torch.Tensor): [N, W] int64 keys.
        counts (torch.Tensor, optional): [N] int64 counts of each key (default: ones).
    Returns:
        tuple of torch.Tensor: ``[U, W]`` distinct keys and their ``[U]`` int64 counts.
    """
    uniq, inverse = unique_rows(keys)
    total = torch.zeros(uniq.shape[0], dtype=torch.long, device=keys.device)
    if counts is None:
        total.index_add_(0, inverse, torch.ones_like(inverse))
    else:
        total.index_add_(0, inverse, counts.long())
    return uniq, total


def count_joint_states(frames: torch.Tensor, cardinality: int) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Sparse histogram of the joint states of all codebooks.

    Args:
        frames (torch.Tensor): [K, N] codes.
        cardinality (int): Codebook size M.
    Returns:
        tuple of torch.Tensor: ``[U, W]`` distinct packed states and their ``[U]`` counts.
    """
    return aggregate_counts(pack_codes(frames, cardinality))


# ----------------------------------------------------------------------------------------------
# Statistics of a sparse joint-state histogram. Both the one-shot functions below and the
# streaming metric (codebook_stats.py) go through these, so they agree exactly.


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


class JointStates(tp.NamedTuple):
    """Sparse histogram of joint states: ``keys`` [U, W] packed states, ``counts`` [U]."""
    keys: torch.Tensor
    counts: torch.Tensor
    num_codebooks: int
    cardinality: int

    @property
    def n_frames(self) -> int:
        return int(self.counts.sum())

    def digits(self) -> torch.Tensor:
        """[K, U] codes of the distinct states."""
        return unpack_keys(self.keys, self.num_codebooks, self.cardinality)


def states_from_codes(codes: torch.Tensor, cardinality: int, delay: bool = False) -> JointStates:
    """Validate ``codes`` [B, K, T], optionally delay-align them, and count the joint states."""
    validate_codes(codes, cardinality)
    if delay:
        codes = delay_align(codes)
    if codes.numel() == 0:
        raise ValueError(f"no frame to estimate from (codes of shape {tuple(codes.shape)}"
                         f"{', after delay alignment' if delay else ''})")
    keys, counts = count_joint_states(codes_to_frames(codes), cardinality)
    return JointStates(keys, counts, codes.shape[1], cardinality)


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
