"""The delay/flatten pairs of the LM study (one per codec and seed trained with both patterns) and their
factorization gap: both engines measure it with `metrics.factorization_gap.FactorizationGap`, one formula."""
import typing as tp

from ...metrics.factorization_gap import FactorizationGap, FrameCrossEntropy


def per_codebook(metrics: tp.Mapping[str, float], prefix: str = 'ce_q') -> tp.List[float]:
    """The values of `<prefix>1..<prefix>K` in codebook order."""
    keys = sorted((int(k[len(prefix):]), k) for k in metrics if k.startswith(prefix) and k[len(prefix):].isdigit())
    return [metrics[k] for _, k in keys]


def delay_flatten_pairs(records: tp.Sequence[dict]) -> tp.Iterator[tp.Tuple[str, int, dict, dict]]:
    """(codec, seed, delay record, flatten record) for each codec and seed trained with both patterns (records
    with 'group' = codec, 'label' = pattern, 'seed'), in sorted order: the study's pairs."""
    by_key = {(r['group'], r['label'], r['seed']): r for r in records}
    for (codec, pattern, seed), delay in sorted(by_key.items()):
        flatten = by_key.get((codec, 'flatten', seed))
        if pattern == 'delay' and flatten is not None:
            yield codec, seed, delay, flatten


def gap_pairs(records: tp.Sequence[dict]) -> tp.Iterator[tp.Tuple[str, int, dict, dict, FactorizationGap]]:
    """`delay_flatten_pairs` with the factorization gap of each pair (from the records' `ce_q*`, nats)."""
    for codec, seed, delay, flatten in delay_flatten_pairs(records):
        gap = FactorizationGap(FrameCrossEntropy(per_codebook(delay['metrics']), delay.get('sig', '')),
                               FrameCrossEntropy(per_codebook(flatten['metrics']), flatten.get('sig', '')))
        yield codec, seed, delay, flatten, gap
