"""Write the rehearsal's results.json (every number) and report.md (its tables and claim verdicts)."""
import json
from pathlib import Path

from ..common.statistics import summarize
from .report import TABLE_METRICS, claims_table, codec_claims, lm_claims, lm_table, table


def write(docs: Path, results: dict) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    runs = results.get('runs', [])
    results['claims'] = codec_claims(runs) + lm_claims(results.get('lm', []))
    (docs / 'results.json').write_text(json.dumps(results, indent=1))
    meta = results['meta']
    summary = summarize(runs + ([{'group': 'stand-in', 'label': 'release', 'seed': 0, 'metrics': results['standin']}]
                                if 'standin' in results else []))
    keys = ['stand-in:release'] + [f'{mode}:{label}' for mode in ('encoder', 'full') for label in ('1e3', '0')]
    lines = ['# Fine-tuning rehearsal: generated tables', '',
             f"Stand-in `//sig/{meta['standin']}` published as `{meta['repo_id']}` (from `{meta['package']}`); "
             f"fine-tunings of {meta['epochs']} epoch(s) of {meta['updates_per_epoch']} updates, "
             f"seeds {meta['seeds']}. "
             'Cells: mean ± standard error of the mean over seeds. Claims: docs/finetune_rehearsal/claims.md.', '',
             '## Codecs', '', *table(summary, keys, TABLE_METRICS), '',
             '## Claims', '', *claims_table(results['claims']), '']
    if results.get('lm'):
        lines += ['## LMs (evaluate-split CE, nats per frame)', '', *lm_table(results['lm']), '']
    (docs / 'report.md').write_text('\n'.join(lines))
