"""The rehearsal's claims (docs/finetune_rehearsal/claims.md) tested on its records, and its Markdown tables."""
import math
import typing as tp

from ..common.statistics import compare, summarize

Record = tp.Dict[str, tp.Any]
# (id, mode, metric, expect, margin): expect '<' / '>' as `studies.common.statistics.compare`; 'noninf': MMD run minus
# control minus 2 SE above -margin (a higher-is-better metric)
CODEC_CLAIMS = (
    ('E1', 'encoder', 'tc_delay', '<', None), ('E2', 'encoder', 'mmd', '<', None), ('E3', 'encoder', 'tc', '<', None),
    ('E4', 'encoder', 'si_snr_db', 'noninf', 0.5), ('E5', 'encoder', 'token_change', '>', None),
    ('F1', 'full', 'tc_delay', '<', None), ('F2', 'full', 'mmd', '<', None), ('F3', 'full', 'tc', '<', None),
    ('F4', 'full', 'si_snr_db', 'noninf', 0.5),
)
TABLE_METRICS = ('tc', 'tc_delay', 'mmd', 'si_snr_db', 'msspec', 'logmel_corr', 'fad_musicnn_inf', 'token_change',
                 'cross_corr', 'min_usage', 'zero_code_change', 'live', 'frozen_max_abs_diff')
MMD_LABEL, CONTROL_LABEL = '1e3', '0'


def codec_claims(records: tp.Sequence[Record]) -> tp.List[Record]:
    summary = summarize(records)
    claims = []
    for claim_id, mode, metric, expect, margin in CODEC_CLAIMS:
        result = compare(summary, f'{mode}:{MMD_LABEL}', f'{mode}:{CONTROL_LABEL}', metric,
                         '>' if expect == 'noninf' else expect)
        if result is None:
            continue
        if expect == 'noninf':
            bound = result['diff'] - 2 * result['se']
            result.update(expect=f'> -{margin} (d - 2 SE)', verdict='held' if bound > -margin else 'not held')
        claims.append({'id': claim_id, **result})
    encoder = [r['metrics']['frozen_max_abs_diff'] for r in records if r['group'] == 'encoder']
    if encoder:
        claims.append({'id': 'E6', 'a': 'encoder:*', 'b': 'stand-in', 'metric': 'frozen_max_abs_diff',
                       'expect': '= 0', 'diff': max(encoder), 'se': 0., 'n': len(encoder),
                       'verdict': 'held' if max(encoder) == 0 else 'not held'})
    return claims


def lm_claims(records: tp.Sequence[Record]) -> tp.List[Record]:
    rows = [{'group': 'lm', 'label': r['label'], 'seed': r['seed'], 'metrics': r['metrics']} for r in records]
    gaps = _gaps(records)
    summary = summarize(rows + gaps)
    result = compare(summary, 'lm:continued', 'lm:scratch', 'ce_per_frame', '<')
    return [{'id': 'L1', **result}] if result else []


def _gaps(records: tp.Sequence[Record]) -> tp.List[Record]:
    """CE(delay) - CE(flatten) per seed, for the continued and the scratch delay LMs."""
    flatten = {r['seed']: r['metrics']['ce_per_frame'] for r in records if r['label'] == 'flatten'}
    return [{'group': 'gap', 'label': r['label'], 'seed': r['seed'],
             'metrics': {'gap': r['metrics']['ce_per_frame'] - flatten[r['seed']]}}
            for r in records if r['label'] in ('continued', 'scratch') and r['seed'] in flatten]


def _cell(entry: tp.Optional[dict]) -> str:
    """mean ± SE of the mean (n seeds)."""
    if entry is None:
        return ''
    n = len(entry['values'])
    se = entry['std'] / math.sqrt(n) if n > 1 else float('nan')
    return f"{entry['mean']:.4g} ± {se:.2g}" if n > 1 else f"{entry['mean']:.4g}"


def table(summary: dict, keys: tp.Sequence[str], metrics: tp.Sequence[str]) -> tp.List[str]:
    lines = ['| setting | n | ' + ' | '.join(metrics) + ' |', '|---|---|' + '---|' * len(metrics)]
    for key in keys:
        if key in summary:
            lines.append(f"| {key} | {summary[key]['n']} | "
                         + ' | '.join(_cell(summary[key].get(m)) for m in metrics) + ' |')
    return lines


def claims_table(claims: tp.Sequence[Record]) -> tp.List[str]:
    lines = ['| id | a vs b | metric | expected | d (a - b) | SE | n | verdict |', '|---|---|---|---|---|---|---|---|']
    for c in claims:
        lines.append(f"| {c['id']} | {c['a']} vs {c['b']} | {c['metric']} | {c['expect']} | {c['diff']:.4g} | "
                     f"{c['se']:.2g} | {c['n']} | {c['verdict']} |")
    return lines


def lm_table(records: tp.Sequence[Record]) -> tp.List[str]:
    rows = [{'group': 'lm', 'label': r['label'], 'seed': r['seed'], 'metrics': r['metrics']} for r in records]
    summary = summarize(rows + _gaps(records))
    lines = ['| LM | n | CE (nats/frame) | gap to flatten | best update |', '|---|---|---|---|---|']
    for label in ('released', 'continued', 'scratch', 'flatten'):
        key = f'lm:{label}'
        if key in summary:
            lines.append(f"| {label} | {summary[key]['n']} | {_cell(summary[key]['ce_per_frame'])} | "
                         f"{_cell(summary.get(f'gap:{label}', {}).get('gap'))} | "
                         f"{_cell(summary[key]['best_update'])} |")
    return lines
