"""Aggregate the evaluated runs over seeds and test the paper's claims (`writers` writes the report).

Each claim is a signed difference between two settings' seed means. Its confidence is the
difference over its standard error, sqrt(s_a^2 / n_a + s_b^2 / n_b) (Welch): "held" when the
direction is the paper's and |difference| > 2 SE, "direction only" when the direction is the
paper's but within 2 SE, "not held" otherwise. With 2 seeds the SE itself is rough (1 degree of
freedom per setting): read it as a scale, not as a p-value.
"""
import math
import typing as tp

from .plan import ABLATIONS, CHOSEN_WEIGHT, WEIGHTS, weight_label

METRICS = ('mmd', 'mmd_unbiased', 'mmd_parallel', 'tc', 'tc_delay', 'code_entropy', 'msspec', 'si_snr_db')
Record = tp.Dict[str, tp.Any]  # {'group', 'label', 'seed', 'sig', 'metrics': {...}}


def with_derived(metrics: tp.Dict[str, float]) -> tp.Dict[str, float]:
    """Add `code_entropy`: the mean over codebooks of the per-codebook code entropy (nats). TC is a
    ratio to the joint entropy, so it must be read next to it: collapsing codebooks to few codes
    also makes them independent."""
    entropies = [v for k, v in metrics.items() if k.startswith('entropy_') and k.split('_')[-1].isdigit()]
    return {**metrics, 'code_entropy': sum(entropies) / len(entropies)} if entropies else dict(metrics)


def mean_std(values: tp.Sequence[float]) -> tp.Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.
    return mean, std


def summarize(records: tp.Sequence[Record]) -> tp.Dict[str, tp.Dict[str, tp.Any]]:
    """{'group:label': {'n', 'seeds', metric: {'mean', 'std', 'values'}}} over the seeds of each setting."""
    settings: tp.Dict[str, tp.List[Record]] = {}
    for record in records:
        settings.setdefault(f"{record['group']}:{record['label']}", []).append(record)
    summary = {}
    for key, runs in settings.items():
        entry: tp.Dict[str, tp.Any] = {'n': len(runs), 'seeds': [r['seed'] for r in runs]}
        for metric in sorted(set().union(*(r['metrics'] for r in runs))):
            values = [r['metrics'][metric] for r in runs if metric in r['metrics']]
            mean, std = mean_std(values)
            entry[metric] = {'mean': mean, 'std': std, 'values': values}
        summary[key] = entry
    return summary


def compare(summary: dict, a: str, b: str, metric: str, expect: str) -> tp.Optional[Record]:
    """Test `metric(a) expect metric(b)`, expect in {'<', '>', '='}; '=' holds within 2 SE."""
    if a not in summary or b not in summary or metric not in summary[a] or metric not in summary[b]:
        return None
    sa, sb = summary[a][metric], summary[b][metric]
    diff = sa['mean'] - sb['mean']
    se = math.sqrt(sa['std'] ** 2 / summary[a]['n'] + sb['std'] ** 2 / summary[b]['n'])
    single = min(summary[a]['n'], summary[b]['n']) < 2
    z = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else 0.)
    if expect == '=':
        verdict = 'held' if abs(z) <= 2 else 'not held'
    else:
        right = diff < 0 if expect == '<' else diff > 0
        verdict = ('held' if abs(z) > 2 else 'direction only') if right else 'not held'
    if single:  # no spread to compare with: the direction is all one seed can say
        verdict = ('undetermined' if expect == '=' else 'direction only' if verdict != 'not held' else 'not held')
        verdict += ' (1 seed, no SE)'
    return {'a': a, 'b': b, 'metric': metric, 'expect': expect, 'mean_a': sa['mean'], 'mean_b': sb['mean'],
            'diff': diff, 'se': se, 'z': z, 'verdict': verdict}


def weight_key(weight: float) -> str:
    return f'weight:{weight_label(weight)}'


def paper_claims(summary: dict) -> tp.List[Record]:
    """The paper's claims that a codec-level run can test (Fig. 2, section 4.2)."""
    claims: tp.List[Record] = []
    w0, w2, w3, w4 = (weight_key(w) for w in WEIGHTS)

    def add(claim: str, *args: tp.Any) -> None:
        result = compare(summary, *args)
        if result is not None:
            claims.append({'claim': claim, **result})

    for metric in ('mmd', 'tc', 'tc_delay'):
        add(f'{metric} falls from weight 0 to 1e2', w2, w0, metric, '<')
        add(f'{metric} falls from weight 1e2 to 1e3', w3, w2, metric, '<')
        add(f'{metric} is lower at 1e3 than at 0', w3, w0, metric, '<')
    add('MSSpec does not move from weight 0 to 1e3', w3, w0, 'msspec', '=')
    add('MSSpec degrades at weight 1e4 (training perturbed)', w4, w3, 'msspec', '>')
    add('delay-aligned MMD gives lower delay-aligned TC than parallel MMD',
        weight_key(CHOSEN_WEIGHT), 'alignment:parallel', 'tc_delay', '<')
    return claims


def ablation_rows(summary: dict) -> tp.List[Record]:
    """Variant minus reference (the sweep's runs at the chosen weight) for each ablation present."""
    rows = []
    reference = weight_key(CHOSEN_WEIGHT)
    for group, (label, override, reference_label) in ABLATIONS.items():
        variant = f'{group}:{label}'
        for metric in ('tc', 'tc_delay', 'mmd_unbiased', 'msspec', 'si_snr_db'):
            result = compare(summary, variant, reference, metric, '=')
            if result is not None:
                rows.append({'group': group, 'variant': f'{label} ({override})',
                             'reference': f'{reference_label} (weight {CHOSEN_WEIGHT:g} default)', **result})
    return rows
