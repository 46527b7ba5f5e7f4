"""Splits (by piece, stratified by source), the audiocraft manifests of each split, and pruning of
pieces outside the selection.
"""
import json
import logging
import math
from pathlib import Path
import typing as tp

from .pieces import PieceResult, atomic_write, seeded_rng
from .signal import SAMPLE_RATE

logger = logging.getLogger(__name__)

SPLITS = ('train', 'valid', 'evaluate', 'generate')
# optional: the FAD reference, from pieces outside the budget (prepare --reference-pieces)
REFERENCE_SPLIT = 'reference'
SPLIT_FRACTIONS = {'valid': 0.04, 'evaluate': 0.04, 'generate': 0.02}
MIN_PIECES_PER_SPLIT = 2


def assign_splits(pieces: tp.Sequence[tp.Tuple[str, str, float]], seed: int,
                  fractions: tp.Optional[tp.Dict[str, float]] = None,
                  min_pieces: int = MIN_PIECES_PER_SPLIT) -> tp.Dict[str, str]:
    """Split pieces (piece_id, source, duration) by piece, stratified by source.

    Each non-train split gets about its fraction of every source's duration, and at least
    `min_pieces` pieces overall (spread over the sources when they are large enough), while every
    source keeps at least one train piece. Deterministic given the seed.
    """
    fractions = dict(SPLIT_FRACTIONS if fractions is None else fractions)
    by_source: tp.Dict[str, tp.List[tp.Tuple[str, float]]] = {}
    for pid, source, dur in sorted(pieces):
        by_source.setdefault(source, []).append((pid, dur))
    n_eval = len(fractions)
    # Minimum pieces per split for each source: small sources first, large ones pick up the rest.
    mins: tp.Dict[str, int] = {}
    remaining = min_pieces
    order = sorted(by_source, key=lambda s: (len(by_source[s]), s))
    for i, source in enumerate(order):
        share = math.ceil(remaining / (len(order) - i))
        feasible = max(0, (len(by_source[source]) - 1) // n_eval)
        mins[source] = min(share, feasible)
        remaining -= mins[source]
    if remaining > 0:
        logger.warning('Too few pieces (%d) to give every split %d pieces', len(pieces), min_pieces)
    assignment = {}
    for source in sorted(by_source):
        items = by_source[source]
        rng = seeded_rng(seed, 'split', source)
        items = [items[i] for i in rng.permutation(len(items))]
        total = sum(d for _, d in items)
        cursor = 0
        for split in sorted(fractions, key=lambda s: (fractions[s], s)):
            target, acc, count = fractions[split] * total, 0.0, 0
            while cursor < len(items) - 1:  # always leave one piece to train
                pid, dur = items[cursor]
                if count >= mins[source] and acc + dur / 2 > target:
                    break
                assignment[pid] = split
                acc += dur
                count += 1
                cursor += 1
        for pid, _ in items[cursor:]:
            assignment[pid] = 'train'
    return assignment


def write_manifests(root: Path, pieces: tp.Sequence[PieceResult], assignment: tp.Dict[str, str],
                    splits: tp.Sequence[str] = SPLITS) -> None:
    """One `egs/<split>/data.jsonl` per split, each line an audiocraft AudioMeta dict."""
    for split in splits:
        lines = []
        for res in sorted(pieces, key=lambda r: r.path):
            if assignment[res.piece_id] != split:
                continue
            lines.append(json.dumps({'path': res.path, 'duration': round(res.duration, 6), 'sample_rate': SAMPLE_RATE,
                                     'amplitude': None, 'weight': None, 'info_path': None}))
        path = root / 'egs' / split / 'data.jsonl'
        path.parent.mkdir(parents=True, exist_ok=True)

        def _write(tmp: str, text: str = ''.join(line + '\n' for line in lines)) -> None:
            Path(tmp).write_text(text)
        atomic_write(path, _write, '.jsonl')


def prune_unselected(root: Path, sources: tp.Sequence[str], keep: tp.Set[str]) -> int:
    """Remove pieces (and stale temp files) under audio/<source>/ that are not in the selection, so the
    folder mirrors the manifests: e.g. pieces finished beyond the budget by parallel workers."""
    removed = 0
    for source in sources:
        folder = root / 'audio' / source
        if not folder.exists():
            continue
        for f in folder.iterdir():
            stale_tmp = f.name.startswith('.') and f.name.endswith('.tmp')
            if stale_tmp or (f.suffix in ('.wav', '.json') and f.stem not in keep):
                f.unlink()
                removed += f.suffix == '.wav'
    return removed
