"""Write the LM study's report: JSON of every number, a Markdown table, a Table 1/2-style figure."""
import json
from pathlib import Path
import typing as tp

from ...common.harness import portable
from ..vocabulary import CODECS, PATTERNS

Record = tp.Dict[str, tp.Any]
LM_COLUMNS = (('ce_per_frame', 'CE/frame (nats)'), ('fad', 'FAD'), ('kld', 'tag KL'),
              ('gen_seconds_per_audio_second', 'gen s / audio s'), ('forward_passes_per_frame', 'passes/frame'))
CODEC_COLUMNS = (('unigram_per_frame', 'unigram entropy/frame (nats)'), ('recon_fad', 'reconstruction FAD'),
                 ('recon_kld', 'reconstruction tag KL'))


def _cell(entry: tp.Optional[dict], metric: str) -> str:
    if not entry or metric not in entry:
        return '-'
    return f"{entry[metric]['mean']:.4g} ± {entry[metric]['std']:.2g}"


def _table(summary: dict, rows: tp.Sequence[tp.Tuple[str, str]], columns: tp.Sequence[tp.Tuple[str, str]]) -> list:
    lines = ['| setting | n | ' + ' | '.join(title for _, title in columns) + ' |',
             '|---|---|' + '---|' * len(columns)]
    for key, label in rows:
        if key in summary:
            lines.append(f"| {label} | {summary[key]['n']} | "
                         + ' | '.join(_cell(summary[key], m) for m, _ in columns) + ' |')
    return lines


def _flatten_clips(protocol: dict) -> str:
    clips = protocol.get('flatten_clips')
    return f" ({clips} for flatten LMs: no FAD / tag KL for them)" if clips and clips != protocol['num_clips'] else ''


def markdown(summary: dict, claims: tp.Sequence[Record], meta: dict) -> str:
    protocol = meta['protocol']
    lm_rows = [(f'{c}:{p}', f'{c} / {p}') for c in CODECS for p in PATTERNS]
    codec_rows = [(f'{c}:codec', c) for c in CODECS] + [('real:floor', 'real data (train vs evaluate)')]
    lines = ['# MusicGen-MMD at CPU scale: delay vs flatten LMs on baseline and MMD tokens', '',
             f"LM config `{meta['base_solver']}`, common overrides `{' '.join(meta['common']) or '(none)'}`, "
             f"seeds {meta['seeds']}, {meta['epochs']} epochs. Codecs: {meta['codec_sigs']}.", '',
             f"Held-out: `{protocol['heldout']}` (CE on {protocol['ce_segments']} segments of "
             f"{protocol['clip_seconds']} s). Generation: {protocol['num_clips']} clips of "
             f"{protocol['clip_seconds']} s per model{_flatten_clips(protocol)}, conditioned on the held-out files' "
             f"metadata, CFG {protocol['cfg_coef']}, sampling at temperature 1; generation speed from one batch of "
             f"{protocol.get('timing_clips', protocol['num_clips'])} clips per model. FAD / tag KL on musicnn "
             f"({protocol['musicnn']}, patches every "
             f"{protocol['hop_seconds']} s) against the held-out files; comparable to other musicnn numbers "
             "only.", '',
             'Mean ± standard deviation over seeds.', '', '## Language models', '',
             *_table(summary, lm_rows, LM_COLUMNS), '', '## Factorization gap (delay − flatten, nats per frame)', '',
             *_table(summary, [(f'{c}:pair', c) for c in CODECS],
                     (('gap_nats_per_frame', 'gap'), ('forward_ratio', 'flatten/delay passes'),
                      ('time_ratio', 'flatten/delay time'))),
             '', '## Reference lines', '',
             *_table(summary, codec_rows, CODEC_COLUMNS + (('fad', 'FAD'), ('kld', 'tag KL'))),
             '', '## Claims', '', '| claim | metric | a | b | a − b | SE | verdict |', '|---|---|---|---|---|---|---|']
    for c in claims:
        lines.append(f"| {c['claim']} | {c['metric']} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.3g} | "
                     f"{c['se']:.2g} | {c['verdict']} |")
    lines += ['', 'Figure: `lm_study.png` (FAD per codec and pattern with the real-data floor and the codec\'s '
              'reconstruction FAD; CE per frame with the unigram entropy; the factorization gap).', '']
    return '\n'.join(lines)


def plot(summary: dict, path: Path) -> None:
    """Three panels over codecs: FAD (bars per pattern, floor and reconstruction lines), CE per frame
    (bars per pattern, unigram entropy ticks), factorization gap; seeds as gray dots."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    codecs = [c for c in CODECS if any(f'{c}:{p}' in summary for p in PATTERNS)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / len(PATTERNS)
    for ax, metric, reference, title in ((axes[0], 'fad', 'recon_fad', 'FAD (musicnn) vs held-out'),
                                         (axes[1], 'ce_per_frame', 'unigram_per_frame', 'held-out CE (nats/frame)')):
        for j, pattern in enumerate(PATTERNS):
            xs = [i + (j - (len(PATTERNS) - 1) / 2) * width for i in range(len(codecs))]
            entries = [summary.get(f'{c}:{pattern}', {}).get(metric) for c in codecs]
            ax.bar(xs, [e['mean'] if e else float('nan') for e in entries], width,
                   yerr=[e['std'] if e else 0 for e in entries], capsize=3, label=pattern)
            for x, e in zip(xs, entries):
                if e:
                    ax.plot([x] * len(e['values']), e['values'], '.', color='gray')
        for i, c in enumerate(codecs):
            ref = summary.get(f'{c}:codec', {}).get(reference)
            if ref:
                ax.hlines(ref['mean'], i - 0.45, i + 0.45, colors='k', linestyles='--',
                          label=('codec reconstruction' if metric == 'fad' else 'unigram entropy') if i == 0 else None)
        if metric == 'fad' and 'fad' in summary.get('real:floor', {}):
            ax.axhline(summary['real:floor']['fad']['mean'], color='green', linestyle=':', label='real data floor')
        ax.set_xticks(range(len(codecs)), codecs)
        ax.set_title(title)
        ax.legend(fontsize=7)
    gaps = [summary.get(f'{c}:pair', {}).get('gap_nats_per_frame') for c in codecs]
    axes[2].bar(range(len(codecs)), [g['mean'] if g else float('nan') for g in gaps],
                yerr=[g['std'] if g else 0 for g in gaps], capsize=3, color='tab:purple')
    axes[2].axhline(0, color='k', linewidth=0.5)
    axes[2].set_xticks(range(len(codecs)), codecs)
    axes[2].set_title('factorization gap (delay − flatten, nats/frame)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path, records: tp.Sequence[Record], summary: dict, claims: tp.Sequence[Record],
                 meta: dict) -> tp.Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    meta = portable(meta, ('heldout', 'floor'))
    paths = {'json': out / 'results.json', 'markdown': out / 'report.md', 'figure': out / 'lm_study.png'}
    data = {'meta': meta, 'runs': list(records), 'summary': summary, 'claims': list(claims)}
    paths['json'].write_text(json.dumps(data, indent=1, allow_nan=True) + '\n')
    paths['markdown'].write_text(markdown(summary, claims, meta))
    plot(summary, paths['figure'])
    return paths
