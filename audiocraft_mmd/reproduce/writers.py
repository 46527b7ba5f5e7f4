"""Write the reproduction report: JSON of every number, a Markdown table, two PNG figures."""
import json
from pathlib import Path
import typing as tp

from ..environment import repo_relative
from .plan import WEIGHTS, weight_label
from .claims import METRICS, Record

TABLE_METRICS = ('mmd', 'mmd_unbiased', 'tc', 'tc_delay', 'code_entropy', 'msspec', 'si_snr_db')


def _cell(entry: dict, metric: str) -> str:
    if metric not in entry:
        return '-'
    return f"{entry[metric]['mean']:.4g} ± {entry[metric]['std']:.2g}"


def markdown(summary: dict, claims: tp.Sequence[Record], ablations: tp.Sequence[Record], meta: dict) -> str:
    lines = ['# EnCodec-MMD at CPU scale: reproduction of the paper\'s codec-level claims', '',
             f"Base config `{meta['base_solver']}`, common overrides `{' '.join(meta['common']) or '(none)'}`, "
             f"seeds {meta['seeds']}; evaluated on `{meta['protocol']['manifest']}` "
             f"({meta.get('n_segments', '?')} segments of {meta['protocol']['segment_duration']} s).", '',
             'Mean ± standard deviation over seeds. mmd: eq. (7), delay-aligned; mmd_unbiased: shared pairs '
             'excluded (0 for independent codebooks); tc / tc_delay: pairwise total correlation in % of the '
             'joint entropy (plain / delay-aligned frames); code_entropy: mean per-codebook code entropy in nats '
             '(max ln(cardinality)); SI-SNR in dB.', '',
             '| setting | n | ' + ' | '.join(TABLE_METRICS) + ' |', '|---|---|' + '---|' * len(TABLE_METRICS)]
    for key, entry in summary.items():
        lines.append(f"| {key} | {entry['n']} | " + ' | '.join(_cell(entry, m) for m in TABLE_METRICS) + ' |')
    lines += ['', '## Claims', '', '| claim | metric | a | b | a − b | SE | verdict |', '|---|---|---|---|---|---|---|']
    for c in claims:
        lines.append(f"| {c['claim']} | {c['metric']} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.3g} | "
                     f"{c['se']:.2g} | {c['verdict']} |")
    if ablations:
        lines += ['', '## Ablations at the chosen weight (variant − reference)', '',
                  '| variant | reference | metric | variant mean | reference mean | diff | SE |',
                  '|---|---|---|---|---|---|---|']
        for r in ablations:
            lines.append(f"| {r['variant']} | {r['reference']} | {r['metric']} | {r['mean_a']:.4g} | "
                         f"{r['mean_b']:.4g} | {r['diff']:+.3g} | {r['se']:.2g} |")
    lines += ['', 'Figures: `fig2_weight_sweep.png` (paper Fig. 2 analogue), `mi_per_codebook.png`.', '']
    return '\n'.join(lines)


def plot_weight_sweep(summary: dict, path: Path) -> None:
    """MMD, TC, MSSpec (and code entropy) against the MMD weight, mean ± std over seeds, seeds as dots."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    keys = [f'weight:{weight_label(w)}' for w in WEIGHTS if f'weight:{weight_label(w)}' in summary]
    xs = list(range(len(keys)))
    panels = (('mmd', 'MMD (eq. 7, delay)'), ('tc', 'TC (% of joint entropy)'), ('msspec', 'MSSpec'),
              ('code_entropy', 'code entropy (nats, mean of codebooks)'))
    panels = tuple(p for p in panels if all(p[0] in summary[k] for k in keys))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    for ax, (metric, title) in zip(axes, panels):
        series = [(metric, 'plain')] + ([('tc_delay', 'delay-aligned')] if metric == 'tc' else [])
        for name, label in series:
            means = [summary[k][name]['mean'] for k in keys]
            stds = [summary[k][name]['std'] for k in keys]
            ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3, label=label)
            for x, k in zip(xs, keys):
                ax.plot([x] * len(summary[k][name]['values']), summary[k][name]['values'], '.', color='gray', alpha=.6)
        ax.set_xticks(xs, [k.split(':')[1] for k in keys])
        ax.set_xlabel('MMD weight')
        ax.set_title(title)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_mutual_information(summary: dict, path: Path) -> None:
    """Per-codebook MI with the other codebooks (delay-aligned), one bar group per setting."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    keys = list(summary)
    codebooks = sorted(int(m.split('_')[-1]) for m in summary[keys[0]] if m.startswith('mi_delay_') and
                       m.split('_')[-1].isdigit() and 'mm' not in m)
    width = 0.8 / max(len(keys), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(codebooks) + 0.4 * len(keys)), 3.5))
    for i, key in enumerate(keys):
        means = [summary[key].get(f'mi_delay_{k}', {}).get('mean', float('nan')) for k in codebooks]
        stds = [summary[key].get(f'mi_delay_{k}', {}).get('std', 0.) for k in codebooks]
        ax.bar([k + i * width for k in codebooks], means, width, yerr=stds, capsize=2, label=key)
    ax.set_xticks([k + 0.4 - width / 2 for k in codebooks], [f'codebook {k}' for k in codebooks])
    ax.set_ylabel('MI with other codebooks (delay-aligned)')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def portable(meta: dict) -> dict:
    """`meta` with the paths inside the repository made relative to it (manifest, XP folders, logs)."""
    protocol = {**meta['protocol'], 'manifest': repo_relative(meta['protocol']['manifest'])}
    statuses = [{**status, **{key: repo_relative(status[key]) for key in ('folder', 'log') if key in status}}
                for status in meta.get('statuses', [])]
    return {**meta, 'protocol': protocol, 'statuses': statuses}


def write_report(out: Path, records: tp.Sequence[Record], summary: dict, claims: tp.Sequence[Record],
                 ablations: tp.Sequence[Record], meta: dict) -> tp.Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    meta = portable(meta)
    paths = {'json': out / 'results.json', 'markdown': out / 'report.md',
             'fig2': out / 'fig2_weight_sweep.png', 'mi': out / 'mi_per_codebook.png'}
    data = {'meta': meta, 'runs': list(records), 'summary': summary, 'claims': list(claims),
            'ablations': list(ablations), 'metrics': list(METRICS)}
    paths['json'].write_text(json.dumps(data, indent=1, allow_nan=True) + '\n')
    paths['markdown'].write_text(markdown(summary, claims, ablations, meta))
    if any(key.startswith('weight:') for key in summary):
        plot_weight_sweep(summary, paths['fig2'])
    plot_mutual_information(summary, paths['mi'])
    return paths
