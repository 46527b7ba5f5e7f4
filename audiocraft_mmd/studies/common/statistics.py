"""Paired statistics of the studies: runs aggregated over seeds (`summarize`) and claims tested with a verdict
(`compare`).

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

Record = tp.Dict[str, tp.Any]  # {'group', 'label', 'seed', 'sig', 'metrics': {...}}


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
