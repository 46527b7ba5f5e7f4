"""Codes as sparse joint-state histograms: validation, exact int64 packing of the K codes of a
frame, and sort-based counting of the distinct joint states (never a dense ``M ** K`` table).

The estimators of `information` and the streaming `CodebookIndependence` both go through these.
"""

import math
import typing as tp

import torch

from ..delay_pattern import delay_align

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


def codes_to_frames(codes: torch.Tensor) -> torch.Tensor:
    """Flatten the batch and time dimensions: ``[B, K, T] -> [K, B * T]`` (int64)."""
    return codes.transpose(0, 1).reshape(codes.shape[1], -1).long()


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
