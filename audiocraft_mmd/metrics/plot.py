"""Figure of a codebook-independence report: per-codebook mutual information with the other
codebooks (bars, as in the paper's Appendix E) beside the pairwise total correlation matrix.

Uses matplotlib's object-oriented API on an Agg canvas, so importing this module never changes
the global pyplot backend.
"""

from pathlib import Path
import typing as tp

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np


def _heatmap(ax, matrix: tp.List[tp.List[float]], title: str, fig: Figure, vmax: float) -> None:
    values = np.array(matrix, dtype=float)
    # The diagonal (100 % by definition) would saturate the color scale: mask it.
    shown = np.ma.masked_array(values, mask=np.eye(len(values), dtype=bool))
    image = ax.imshow(shown, cmap='viridis', vmin=0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='I(A;B) / H(A,B) (%)')
    K = len(values)
    for i in range(K):
        for j in range(K):
            if i != j and K <= 12:
                ax.text(j, i, f'{values[i, j]:.2g}', ha='center', va='center', color='w', fontsize=8)
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xlabel('codebook')
    ax.set_ylabel('codebook')
    ax.set_title(title)


def plot_independence(report: tp.Dict[str, tp.Any], path: tp.Union[str, Path]) -> Path:
    """Draw a report of `audiocraft_mmd.metrics.independence_cli` (or `CodebookIndependence.report()`).

    Args:
        report (dict): with a ``plain`` entry (and optionally ``delay``) holding ``mi``, ``mi_mm``,
            ``matrix``, ``n_frames`` as produced by `information.independence_report`.
        path (str or Path): output PNG.
    Returns:
        Path: the written file.
    """
    variants = [name for name in ['plain', 'delay'] if report.get(name) and 'mi' in report[name]]
    if not variants:
        raise ValueError("the report has no estimate to plot (no frame?)")
    fig = Figure(figsize=(5 + 4.5 * len(variants), 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 1 + len(variants), squeeze=False)[0]

    ax = axes[0]
    K = len(report[variants[0]]['mi'])
    width = 0.8 / len(variants)
    for v, name in enumerate(variants):
        x = np.arange(K) + (v - (len(variants) - 1) / 2) * width
        ax.bar(x, report[name]['mi'], width=width, label=f'{name} (plug-in)')
        ax.scatter(x, report[name]['mi_mm'], marker='_', s=200, color='k',
                   label='Miller-Madow' if v == 0 else None, zorder=3)
    ax.set_xticks(range(K))
    ax.set_xlabel('codebook k')
    ax.set_ylabel('I(C_k; C_-k) (nats)')
    ax.set_title(f"MI with all other codebooks\nN = {report[variants[0]]['n_frames']} frames")
    ax.legend(fontsize=8)

    # One color scale for all heatmaps so that plain and delay-aligned can be compared by eye.
    off_diagonal = [v for name in variants for i, row in enumerate(report[name]['matrix'])
                    for j, v in enumerate(row) if i != j and v is not None]
    vmax = max(max(off_diagonal, default=1.0), 1e-9)
    for ax, name in zip(axes[1:], variants):
        entry = report[name]
        tc = entry['tc']
        title = (f"{name}: TC {tc['mean']:.3g} ± {tc['std']:.2g} % (MM {tc['mean_mm']:.3g})\n"
                 f"N = {entry['n_frames']} frames")
        _heatmap(ax, entry['matrix'], title, fig, vmax)

    model = report.get('model')
    if model:
        fig.suptitle(str(model), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
