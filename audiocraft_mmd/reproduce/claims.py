"""Aggregate the evaluated runs over seeds and test the paper's claims (`writers` writes the report).

Each claim is a signed difference d = a - b between two settings. Paired (the default when both
settings have >= 2 seeds in common, as every two branches of the paired design do: they start from
the same trunk): d is the mean of the per-seed differences d_s = a_s - b_s over the common seeds and
SE = std(d_s) / sqrt(n) (sample std). Otherwise (Welch) d is the difference of the seed means and
SE = sqrt(s_a^2 / n_a + s_b^2 / n_b). z = d / SE. Verdicts: for '<' or '>', "held" when the sign
of d is the expected one and |z| > 2, "direction only" when it is but |z| <= 2, "not held"
otherwise; for '=', "held" when |z| <= 2. With 1 common seed there is no SE: "direction only" or
"undetermined". With 3 seeds the SE has 2 degrees of freedom: read it as a scale, not a p-value.
"""
import math
import typing as tp

from ..metrics.code_use import live_flags  # the liveness rule: the decoder uses its codes
from .plan import ABLATIONS, CHOSEN_WEIGHT, KERNEL_VARIANTS, QUANTIZERS, WEIGHTS, weight_label

METRICS = ('mmd', 'mmd_unbiased', 'mmd_parallel', 'tc', 'tc_delay', 'tc_cond_delay', 'code_entropy', 'msspec',
           'si_snr_db', 'logmel_corr', 'cross_corr', 'min_usage', 'fad_musicnn', 'live')
Record = tp.Dict[str, tp.Any]  # {'group', 'label', 'seed', 'sig', 'metrics': {...}}


def with_derived(metrics: tp.Dict[str, float]) -> tp.Dict[str, float]:
    """Add `code_entropy`: the mean over codebooks of the per-codebook code entropy (nats). TC is a
    ratio to the joint entropy, so it must be read next to it: collapsing codebooks to few codes
    also makes them independent. Add the liveness flags (`live_flags`)."""
    entropies = [v for k, v in metrics.items() if k.startswith('entropy_') and k.split('_')[-1].isdigit()]
    derived = {**metrics, **live_flags(metrics)}
    return {**derived, 'code_entropy': sum(entropies) / len(entropies)} if entropies else derived


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
            have = [r for r in runs if metric in r['metrics']]
            values = [r['metrics'][metric] for r in have]
            mean, std = mean_std(values)
            entry[metric] = {'mean': mean, 'std': std, 'values': values, 'seeds': [r['seed'] for r in have]}
        summary[key] = entry
    return summary


def paired_values(sa: dict, sb: dict) -> tp.Tuple[tp.List[float], tp.List[float]]:
    """The values of two metric entries (`summarize`) at their common seeds, in seed order."""
    a, b = dict(zip(sa['seeds'], sa['values'])), dict(zip(sb['seeds'], sb['values']))
    common = sorted(set(a) & set(b))
    return [a[s] for s in common], [b[s] for s in common]


def compare(summary: dict, a: str, b: str, metric: str, expect: str, paired: bool = True) -> tp.Optional[Record]:
    """Test `metric(a) expect metric(b)`, expect in {'<', '>', '='}; '=' holds within 2 SE (module docstring)."""
    if a not in summary or b not in summary or metric not in summary[a] or metric not in summary[b]:
        return None
    sa, sb = summary[a][metric], summary[b][metric]
    va, vb = paired_values(sa, sb) if paired else ([], [])
    paired = len(va) >= 2
    if paired:
        diff, std = mean_std([x - y for x, y in zip(va, vb)])
        se, n, mean_a, mean_b = std / math.sqrt(len(va)), len(va), sum(va) / len(va), sum(vb) / len(vb)
    else:
        diff, mean_a, mean_b = sa['mean'] - sb['mean'], sa['mean'], sb['mean']
        n = min(len(sa['values']), len(sb['values']))
        se = math.sqrt(sa['std'] ** 2 / len(sa['values']) + sb['std'] ** 2 / len(sb['values']))
    z = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else 0.)
    if expect == '=':
        verdict = 'held' if abs(z) <= 2 else 'not held'
    else:
        right = diff < 0 if expect == '<' else diff > 0
        verdict = ('held' if abs(z) > 2 else 'direction only') if right else 'not held'
    if n < 2:  # no spread to compare with: the direction is all one seed can say
        verdict = ('undetermined' if expect == '=' else 'direction only' if verdict != 'not held' else 'not held')
        verdict += ' (1 seed, no SE)'
    return {'a': a, 'b': b, 'metric': metric, 'expect': expect, 'mean_a': mean_a, 'mean_b': mean_b,
            'diff': diff, 'se': se, 'z': z, 'n': n, 'paired': paired, 'verdict': verdict}


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
    # Reconstruction cost: none at the chosen weight (section 5.1), some at 1e4.
    for metric, name, worse in (('msspec', 'MSSpec', '>'), ('si_snr_db', 'SI-SNR', '<'), ('fad_musicnn', 'FAD', '>'),
                                ('logmel_corr', 'log-mel corr', '<')):
        add(f'{name} does not move from weight 0 to 1e3', w3, w0, metric, '=')
        add(f'{name} degrades at weight 1e4 (training perturbed)', w4, w3, metric, worse)
    add('delay-aligned MMD gives lower delay-aligned TC than parallel MMD',
        weight_key(CHOSEN_WEIGHT), 'alignment:parallel', 'tc_delay', '<')
    # Table 4 (App. C): the loss is not tied to the RVQ; each product quantizer against itself at weight 0.
    for quantizer in QUANTIZERS:
        off, on = (f'quantizer:{quantizer}_w{weight_label(w)}' for w in (0., CHOSEN_WEIGHT))
        for metric in ('mmd', 'tc', 'tc_delay'):
            add(f'{quantizer}: {metric} is lower at 1e3 than at 0', on, off, metric, '<')
        add(f'{quantizer}: MSSpec does not move from weight 0 to 1e3', on, off, 'msspec', '=')
    # Fig. 3 (App. B): on the DAC codec too, the MMD and the TC fall with the weight, MSSpec holds up to 1e3.
    d0, d2, d3, d4 = (f'dac:w{weight_label(w)}' for w in WEIGHTS)
    for metric in ('mmd', 'tc', 'tc_delay'):
        add(f'dac: {metric} is lower at 1e3 than at 0', d3, d0, metric, '<')
    add('dac: MSSpec does not move from weight 0 to 1e3', d3, d0, 'msspec', '=')
    add('dac: MSSpec degrades at weight 1e4', d4, d3, 'msspec', '>')
    # Table 3: the Gaussian kernel reconstructs better than every other kernel (at matched gradient scale).
    for kernel in KERNEL_VARIANTS:
        add(f'gaussian kernel reconstructs better than {kernel} (MSSpec)', weight_key(CHOSEN_WEIGHT),
            f'kernels:{kernel}', 'msspec', '<')
    return claims


ABLATION_METRICS = ('tc', 'tc_delay', 'tc_cond_delay', 'mmd_unbiased', 'code_entropy', 'msspec', 'si_snr_db',
                    'logmel_corr', 'fad_musicnn')


def ablation_rows(summary: dict) -> tp.List[Record]:
    """Variant minus reference (the sweep's runs at the chosen weight) for each ablation present."""
    rows = []
    reference = weight_key(CHOSEN_WEIGHT)
    for group, (label, override, reference_label) in ABLATIONS.items():
        variant = f'{group}:{label}'
        rows += _ablation(summary, group, variant, f'{label} ({override})', reference,
                          f'{reference_label} (weight {CHOSEN_WEIGHT:g} default)')
    for kernel in KERNEL_VARIANTS:  # paper Table 3
        rows += _ablation(summary, 'kernels', f'kernels:{kernel}', f'{kernel} (matched gradient scale)', reference,
                          f'gaussian (weight {CHOSEN_WEIGHT:g})')
    return rows


def _ablation(summary: dict, group: str, variant: str, variant_name: str, reference: str,
              reference_name: str) -> tp.List[Record]:
    rows = []
    for metric in ABLATION_METRICS:
        result = compare(summary, variant, reference, metric, '=')
        if result is not None:
            rows.append({'group': group, 'variant': variant_name, 'reference': reference_name, **result})
    return rows
