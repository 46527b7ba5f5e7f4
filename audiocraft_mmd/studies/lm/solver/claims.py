"""Aggregate the study over seeds and test the paper's LM claims with the codec report's verdicts.

Records (one per seed each): an LM's metrics under `<codec>:<pattern>`; per codec and seed the
delay-vs-flatten pair under `<codec>:pair` (factorization gap, forward-pass and time ratios) and
the codec's references under `<codec>:codec` (unigram entropy, reconstruction FAD/KL); the real-data
floor under `real:floor`. Means, standard deviations and verdicts come from
`audiocraft_mmd.studies.common.statistics` (`summarize`, `compare` with `paired=False`: Welch SE, 2-SE rule,
since LMs of different codecs share no trunk), so both reports use one formula. A claim against a
constant ("flatten takes >= 3x the time") compares with a constant entry: its values are the
constant once per seed of the other side, so its SE is 0 and the SE is the other side's alone.
"""
import typing as tp

from ...common.statistics import Record, compare, summarize
from ..pairs import gap_pairs
from ..vocabulary import CODECS

FORWARD_RATIO_FRACTION = 0.9  # "about K x the forward passes": more than 0.9 K (flatten / delay: K T / (T + K - 1))
MIN_TIME_RATIO = 3.0  # "takes >= 3x the time"


def pair_records(lm_records: tp.Sequence[Record]) -> tp.List[Record]:
    """Per codec and seed with both LMs: the factorization gap (delay - flatten, nats per frame, `pairs.gap_pairs`)
    and flatten / delay ratios of forward passes per frame and time."""
    pairs = []
    for codec, seed, delay, flatten, gap in gap_pairs(lm_records):
        d, f = delay['metrics'], flatten['metrics']
        metrics = {'gap_nats_per_frame': gap.nats_per_frame, 'num_codebooks': float(len(gap.delay.per_codebook)),
                   'forward_ratio': f['forward_passes_per_frame'] / d['forward_passes_per_frame'],
                   'time_ratio': f['gen_seconds_per_audio_second'] / d['gen_seconds_per_audio_second']}
        pairs.append({'group': codec, 'label': 'pair', 'seed': seed, 'sig': f"{delay['sig']}-{flatten['sig']}",
                      'metrics': metrics})
    return pairs


def constant_entry(value: float, n: int) -> dict:
    """A summary entry holding `value` for `n` seeds (SE 0), to compare a setting with a constant."""
    return {'n': n, 'seeds': [], 'value': {'mean': value, 'std': 0., 'values': [value] * n}}


def _against_constant(summary: dict, key: str, metric: str, value: float, expect: str) -> tp.Optional[Record]:
    if key not in summary or metric not in summary[key]:
        return None
    entry = dict(summary[key])
    entry['value'] = entry[metric]
    extended = {**summary, key: entry, 'constant': constant_entry(value, max(entry['n'], 2))}
    result = compare(extended, key, 'constant', 'value', expect, paired=False)
    return None if result is None else {**result, 'metric': metric, 'b': f'{value:g}'}


# The declared comparisons, in report order: (claim, a, b, metric, expect, paired). Welch (unpaired) between the
# baseline and MMD codecs: their LMs share no trunk in the first study's design.
DECLARED: tp.Tuple[tp.Tuple[str, str, str, str, str, bool], ...] = (
    ('the factorization gap is smaller on MMD tokens than on baseline tokens',
     'mmd:pair', 'baseline:pair', 'gap_nats_per_frame', '<', False),
    ('delay-LM FAD on MMD tokens <= on baseline tokens', 'mmd:delay', 'baseline:delay', 'fad', '<', False),
    ('delay-LM tag KL on MMD tokens <= on baseline tokens', 'mmd:delay', 'baseline:delay', 'kld', '<', False),
    ('on MMD tokens, delay FAD is within noise of flatten FAD', 'mmd:delay', 'mmd:flatten', 'fad', '=', False),
    ('on baseline tokens, delay FAD is within noise of flatten FAD',
     'baseline:delay', 'baseline:flatten', 'fad', '=', False),
    # issue #19, declared before its run: paired by seed (both codecs branch from the seed's trunk; same LM seed)
    ('delay-LM FAD on conditional-MMD tokens <= on (global) MMD tokens',
     'mmd_conditional:delay', 'mmd:delay', 'fad', '<', True),
    ('delay-LM tag KL on conditional-MMD tokens <= on (global) MMD tokens',
     'mmd_conditional:delay', 'mmd:delay', 'kld', '<', True),
    ('the factorization gap is smaller on conditional-MMD tokens than on (global) MMD tokens',
     'mmd_conditional:pair', 'mmd:pair', 'gap_nats_per_frame', '<', True),
    # paper Table 5 (issue #17), declared before its run: paired by seed (with and without MMD branch from the
    # seed's trunk of that quantizer; same LM seed)
    *((f'delay-LM {name} on {quantizer} tokens with MMD <= without',
       f'{quantizer}_mmd:delay', f'{quantizer}:delay', metric, '<', True)
      for quantizer in ('pvq', 'pvq_dropout') for metric, name in (('fad', 'FAD'), ('kld', 'tag KL'))),
)


def lm_claims(summary: dict) -> tp.List[Record]:
    """The paper's LM claims that the study can test (Tables 1-2), each with a verdict. K (the number
    of codebooks) is read from the pairs' `num_codebooks` (the LMs' ce_q* count)."""
    claims: tp.List[Record] = []
    ks = {v for key, entry in summary.items() if key.endswith(':pair') for v in entry['num_codebooks']['values']}
    assert len(ks) <= 1, f"the LMs model different numbers of codebooks: {sorted(ks)}"
    num_codebooks = int(ks.pop()) if ks else 0

    def add(claim: str, result: tp.Optional[Record]) -> None:
        if result is not None:
            claims.append({'claim': claim, **result})

    for claim, a, b, metric, expect, paired in DECLARED:
        add(claim, compare(summary, a, b, metric, expect, paired=paired))
    for codec in CODECS:
        add(f'{codec}: flatten makes about K x the forward passes per frame (> {FORWARD_RATIO_FRACTION:g} K)',
            _against_constant(summary, f'{codec}:pair', 'forward_ratio', FORWARD_RATIO_FRACTION * num_codebooks, '>'))
        add(f'{codec}: flatten takes >= {MIN_TIME_RATIO:g}x the generation time of delay',
            _against_constant(summary, f'{codec}:pair', 'time_ratio', MIN_TIME_RATIO, '>'))
        add(f'{codec}: the delay LM learns (held-out CE per frame below the unigram entropy)',
            _learns(summary, codec))
    return claims


def _learns(summary: dict, codec: str) -> tp.Optional[Record]:
    """Delay-LM cross-entropy per frame against the codec's unigram entropy per frame (same seeds)."""
    lm, ref = summary.get(f'{codec}:delay'), summary.get(f'{codec}:codec')
    if lm is None or ref is None or 'ce_per_frame' not in lm or 'unigram_per_frame' not in ref:
        return None
    extended = {'lm': {'n': lm['n'], 'x': lm['ce_per_frame']},
                'unigram': {'n': ref['n'], 'x': ref['unigram_per_frame']}}
    result = compare(extended, 'lm', 'unigram', 'x', '<', paired=False)
    if result is None:
        return None
    return {**result, 'a': f'{codec}:delay', 'b': f'{codec}:codec', 'metric': 'ce vs unigram'}


def summarize_study(lm_records: tp.Sequence[Record], codec_records: tp.Sequence[Record],
                    floor: tp.Optional[Record] = None) -> tp.Tuple[tp.List[Record], dict, tp.List[Record]]:
    """(all records, summary, claims)."""
    records = [*lm_records, *pair_records(lm_records), *codec_records, *([floor] if floor else [])]
    summary = summarize(records)
    return records, summary, lm_claims(summary)
