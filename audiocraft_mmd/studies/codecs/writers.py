"""Write the reproduction report: JSON of every number, a Markdown table, PNG figures."""
import json
from pathlib import Path
import typing as tp

from ..common.harness import portable
from .plan import CHOSEN_WEIGHT, WEIGHTS, weight_label
from ...metrics.code_use import rule_text
from .claims import METRICS, Record

# Weight sweeps drawn as the paper's figures: setting-key prefix (the plan's labels) -> (file, caption).
# Fig. 2 is EnCodec's sweep, Fig. 3 (Appendix B) the same axes for RVQGAN/DAC.
SWEEP_FIGURES = {'weight:': ('fig2_weight_sweep.png', 'paper Fig. 2 analogue, EnCodec'),
                 'dac:w': ('fig3_dac_weight_sweep.png', 'paper Fig. 3 analogue, DAC')}
MI_FIGURE = ('mi_per_codebook.png', 'MI of each codebook with the others')

# Reconstruction, liveness, independence.
TABLE_METRICS = ('msspec', 'si_snr_db', 'logmel_corr', 'fad_musicnn', 'cross_corr', 'min_usage', 'live',
                 'mmd', 'mmd_unbiased', 'tc', 'tc_delay', 'code_entropy')
LIVENESS_METRICS = ('logmel_corr', 'cross_corr', 'cross_corr_input', 'rms_ratio', 'min_usage', 'zero_code_change',
                    'live_cross', 'live_usage', 'live_zero', 'live')


def _cell(entry: dict, metric: str) -> str:
    if metric not in entry:
        return '-'
    return f"{entry[metric]['mean']:.4g} ± {entry[metric]['std']:.2g}"


def _table(summary: dict, metrics: tp.Sequence[str]) -> tp.List[str]:
    lines = ['| setting | n | ' + ' | '.join(metrics) + ' |', '|---|---|' + '---|' * len(metrics)]
    for key, entry in summary.items():
        lines.append(f"| {key} | {entry['n']} | " + ' | '.join(_cell(entry, m) for m in metrics) + ' |')
    return lines


def _perplexities(summary: dict) -> tp.List[str]:
    """Per-codebook perplexity (mean over seeds) as a fraction of the bins is `min_usage`; the raw values here."""
    books = sorted({int(m.split('_')[-1]) for entry in summary.values() for m in entry
                    if m.startswith('perplexity_')})
    if not books:
        return []
    metrics = [f'perplexity_{k}' for k in books]
    return ['', 'Per-codebook perplexity (exp of the code entropy; a criterion needs >= 25% of the bins):', '',
            *_table(summary, metrics)]


def _kernel_factors(meta: dict) -> tp.List[str]:
    factors = meta.get('kernel_factors') or {}
    if not factors:
        return []
    kernels = sorted({k for f in factors.values() for k in f})
    lines = ['', '## Kernel weight factors (Table 3, matched gradient scale)', '',
             'factor = ||d MMD_gaussian / d streams|| / ||d MMD_kernel / d streams|| on the trunk\'s streams '
             '(evaluation segments, macro-batch size); a kernel branch trains at '
             f'losses.mmd = {CHOSEN_WEIGHT:g} x factor.',
             '', '| seed | ' + ' | '.join(kernels) + ' |', '|---|' + '---|' * len(kernels)]
    for seed, values in factors.items():
        lines.append(f'| {seed} | ' + ' | '.join(f'{values[k]:.3g}' if k in values else '-' for k in kernels) + ' |')
    return lines


def _fad_note(summary: dict, meta: dict) -> str:
    patches = [v for entry in summary.values() for v in entry.get('fad_patches', {}).get('values', [])]
    if not meta['protocol'].get('fad', True):
        return 'FAD: off (--no-fad).'
    if patches and not any('fad_musicnn' in entry for entry in summary.values()):
        return (f'FAD: left out, {int(min(patches))} musicnn patches per set < 201 needed for a full-rank '
                'covariance (evaluation audio too short).')
    return (f"FAD: musicnn, reconstructions vs originals, whole evaluation files, 3 s patches every "
            f"{meta['protocol'].get('fad_hop', 1.0):g} s ({int(max(patches)) if patches else '?'} per set); "
            'comparable to other musicnn FADs at this set size only.')


def _figures(summary: dict) -> tp.List[tp.Tuple[str, str, tp.Optional[str]]]:
    """(file, caption, sweep key prefix or None for the MI bars) of each figure `summary` has data for."""
    sweeps = [(name, caption, prefix) for prefix, (name, caption) in SWEEP_FIGURES.items()
              if _sweep_keys(summary, prefix)]
    return sweeps + ([(*MI_FIGURE, None)] if summary else [])


def markdown(summary: dict, claims: tp.Sequence[Record], ablations: tp.Sequence[Record], meta: dict) -> str:
    schedule = meta.get('schedule', {})
    lines = ['# EnCodec-MMD at CPU scale: reproduction of the paper\'s codec-level claims', '',
             f"Base config `{meta['base_solver']}`, common overrides `{' '.join(meta['common']) or '(none)'}`, "
             f"seeds {meta['seeds']}; evaluated on `{meta['protocol']['manifest']}` "
             f"({meta.get('n_segments', '?')} segments of {meta['protocol']['segment_duration']} s).", '',
             f"Paired design: per seed a trunk trains at weight 0 for {schedule.get('trunk_epochs', '?')} epochs, "
             f"then every setting branches from it for {schedule.get('branch_epochs', '?')} epochs (row "
             "`trunk:trunk`: the trunks themselves).", '',
             'Mean ± standard deviation over seeds. Reconstruction: msspec (lower is better), si_snr_db (dB, higher '
             'is better), logmel_corr (log-mel correlation with the input), fad_musicnn. Liveness: cross_corr '
             '(outputs of different inputs), min_usage (smallest codebook perplexity / bins), live (fraction of '
             f'seeds that are {rule_text()}). Independence: mmd (eq. (7), delay-aligned, Gaussian kernel), '
             'mmd_unbiased (shared pairs excluded, 0 for independent codebooks), tc / tc_delay (pairwise total '
             'correlation in % of the joint entropy, plain / delay-aligned frames), code_entropy (mean per-codebook '
             'code entropy in nats).', '', _fad_note(summary, meta), '', *_table(summary, TABLE_METRICS),
             '', '## Liveness criteria, each separately', '',
             'Each flag is the fraction of seeds that meet the criterion.', '',
             *_table(summary, LIVENESS_METRICS), *_perplexities(summary),
             '', '## Claims', '',
             'a − b is the mean of per-seed differences (paired: both branch from the same trunk), SE their std / '
             'sqrt(n); verdict rules in `audiocraft_mmd/reproduce/claims.py`.', '',
             '| claim | metric | a | b | a − b | SE | n | verdict |', '|---|---|---|---|---|---|---|---|']
    for c in claims:
        lines.append(f"| {c['claim']} | {c['metric']} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.3g} | "
                     f"{c['se']:.2g} | {c.get('n', '?')}{'' if c.get('paired', True) else ' (unpaired)'} | "
                     f"{c['verdict']} |")
    lines += _kernel_factors(meta)
    if ablations:
        lines += ['', '## Ablations at the chosen weight (variant − reference, paired)', '',
                  '| variant | reference | metric | variant mean | reference mean | diff | SE |',
                  '|---|---|---|---|---|---|---|']
        for r in ablations:
            lines.append(f"| {r['variant']} | {r['reference']} | {r['metric']} | {r['mean_a']:.4g} | "
                         f"{r['mean_b']:.4g} | {r['diff']:+.3g} | {r['se']:.2g} |")
    figures = ', '.join(f'`{name}` ({caption})' for name, caption, _ in _figures(summary))
    lines += ['', f'Figures: {figures or "none"}.', '']
    return '\n'.join(lines)


def _sweep_keys(summary: dict, prefix: str) -> tp.List[str]:
    return [f'{prefix}{weight_label(w)}' for w in WEIGHTS if f'{prefix}{weight_label(w)}' in summary]


def plot_weight_sweep(summary: dict, path: Path, prefix: str = 'weight:') -> None:
    """MMD, TC, MSSpec (and code entropy) against the MMD weight of the settings `<prefix><weight>`,
    mean ± std over seeds, seeds as dots."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    keys = _sweep_keys(summary, prefix)
    xs = list(range(len(keys)))
    panels = (('mmd', 'MMD (eq. 7, delay)'), ('tc', 'TC (% of joint entropy)'), ('msspec', 'MSSpec'),
              ('si_snr_db', 'SI-SNR (dB)'), ('code_entropy', 'code entropy (nats, mean of codebooks)'))
    panels = tuple(p for p in panels if all(p[0] in summary[k] for k in keys))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (metric, title) in zip(axes[0], panels):
        series = [(metric, 'plain')] + ([('tc_delay', 'delay-aligned')] if metric == 'tc' else [])
        for name, label in series:
            means = [summary[k][name]['mean'] for k in keys]
            stds = [summary[k][name]['std'] for k in keys]
            ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3, label=label)
            for x, k in zip(xs, keys):
                ax.plot([x] * len(summary[k][name]['values']), summary[k][name]['values'], '.', color='gray', alpha=.6)
        ax.set_xticks(xs, [k[len(prefix):] for k in keys])
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


def write_report(out: Path, records: tp.Sequence[Record], summary: dict, claims: tp.Sequence[Record],
                 ablations: tp.Sequence[Record], meta: dict) -> tp.Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    meta = portable(meta, ('manifest',))
    paths = {'json': out / 'results.json', 'markdown': out / 'report.md'}
    data = {'meta': meta, 'runs': list(records), 'summary': summary, 'claims': list(claims),
            'ablations': list(ablations), 'metrics': list(METRICS)}
    paths['json'].write_text(json.dumps(data, indent=1, allow_nan=True) + '\n')
    paths['markdown'].write_text(markdown(summary, claims, ablations, meta))
    for name, _, prefix in _figures(summary):
        paths[name] = out / name
        if prefix is None:
            plot_mutual_information(summary, paths[name])
        else:
            plot_weight_sweep(summary, paths[name], prefix)
    return paths
