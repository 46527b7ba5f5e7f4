"""Aggregate the token-LM study: per-seed pairs (factorization gap per frame and per codebook), means and SEs
over seeds, the declared claims (`claims`), beside each codec's `tc_cond_delay` (nats)."""
import dataclasses
import json
import math
from pathlib import Path
import typing as tp

from ...common.statistics import summarize
from ..pairs import gap_pairs
from .claims import study_claims


def codec_runs(paths: tp.Sequence[Path]) -> tp.Dict[tp.Tuple[str, int], dict]:
    """{(codec, seed): run record} from the codec reproductions' results.json, merged (codec groups or seeds
    trained by separate reproductions; a later file wins)."""
    from ..codecs import sigs_from_results
    runs = {}
    for path in paths:
        by_sig = {r['sig']: r for r in json.loads(Path(path).read_text()).get('runs', []) if r.get('sig')}
        runs.update({key: by_sig[sig] for key, sig in sigs_from_results(path).items()})
    return runs


CODEC_METRICS = ('tc_cond_delay', 'tc_delay_mm', 'live')


def load_runs(out: Path) -> tp.List[dict]:
    records = []
    for path in sorted(p for p in (out / 'runs').glob('*.json') if not p.stem.endswith('_fad')):
        record = json.loads(path.read_text())
        fad = path.with_name(path.stem + '_fad.json')
        if fad.exists():
            record['metrics'].update(json.loads(fad.read_text())['metrics'])
        records.append(record)
    return records


def pairs(records: tp.Sequence[dict]) -> tp.List[dict]:
    """Per codec and seed with both LMs: gap = delay - flatten CE (nats per frame and per codebook,
    `pairs.gap_pairs`)."""
    out = []
    for codec, seed, _, _, gap in gap_pairs(records):
        metrics = {'gap_nats_per_frame': gap.nats_per_frame,
                   **{f'gap_q{k + 1}': v for k, v in enumerate(gap.per_codebook)}}
        out.append({'group': codec, 'label': 'pair', 'seed': seed, 'metrics': metrics})
    return out


def codec_records(runs: tp.Mapping[tp.Tuple[str, int], dict], seeds, codecs) -> tp.List[dict]:
    """The study's codec rows; with the weights' fingerprint where the reproduction recorded it (`resume`
    checks a retrained codec against it)."""
    from ....models.fingerprint import fingerprint_field

    def record(c: str, s: int) -> dict:
        run = runs[c, s]
        return {'group': c, 'label': 'codec', 'seed': s, **fingerprint_field(run),
                'metrics': {m: float(run['metrics'][m]) for m in CODEC_METRICS if m in run['metrics']}}
    return [record(c, s) for s in seeds for c in codecs if (c, s) in runs]


def _cell(summary: dict, key: str, metric: str, digits: int = 3) -> str:
    e = summary.get(key, {}).get(metric)
    if not e:
        return '-'
    n = len(e['values'])
    se = e['std'] / math.sqrt(n) if n > 1 else float('nan')
    return f"{e['mean']:.{digits}f} ± {se:.{digits}f}"


def markdown(summary: dict, claims: tp.Sequence[dict], config: dict, seeds, codecs, records) -> str:
    lines = ['# Token-LM study: delay vs flatten LMs trained to convergence (issue 30)', '',
             f"LM: audiocraft `LMModel`, unconditional, {config['num_layers']} layers x {config['dim']} d, "
             f"{config['frames']}-frame segments, batch {config['batch_size']}, AdamW lr {config['lr']}, at most "
             f"{config['max_updates']} updates, valid CE every {config['eval_every']} updates, early stopping after "
             f"{config['patience']} evaluations without a new best (the best state is kept). Seeds {list(seeds)} "
             "(codec seed = LM seed; the codecs of a seed branch from one trunk). Cells: mean ± SE over seeds. "
             "CE on every window of the evaluate split (nats per frame = sum over codebooks).", '',
             '## Factorization gap beside the codec\'s conditional dependence', '',
             '| codec | delay CE | flatten CE | gap (delay − flatten) | gap per codebook q1..q4 | tc_cond_delay '
             '(nats) | codec live |', '|---|---|---|---|---|---|---|']
    for c in codecs:
        per_q = ' / '.join(_cell(summary, f'{c}:pair', f'gap_q{k}', 3) for k in range(1, 5))
        lines.append(f"| {c} | {_cell(summary, f'{c}:delay', 'ce_per_frame')} | "
                     f"{_cell(summary, f'{c}:flatten', 'ce_per_frame')} | "
                     f"{_cell(summary, f'{c}:pair', 'gap_nats_per_frame')} | {per_q} | "
                     f"{_cell(summary, f'{c}:codec', 'tc_cond_delay')} | {_cell(summary, f'{c}:codec', 'live', 0)} |")
    trained = [r for r in records if 'history' in r]
    early = sum(bool(r['history']['stopped_early']) for r in trained)
    lines += ['', '## Convergence (valid CE over the last 20% of evaluations)', '',
              f"{early} of {len(trained)} LMs stopped early (no new best valid CE in {config['patience']} "
              f"evaluations, i.e. {config['patience'] * config['eval_every']} updates); the others hit the "
              f"{config['max_updates']}-update cap.", '',
              '| LM | seed | best update | stopped early | last-20% range | last-20% change | total drop | s |',
              '|---|---|---|---|---|---|---|---|']
    for r in sorted(trained, key=lambda r: (r['group'], r['label'], r['seed'])):
        h = r['history']
        t = h['flat_last_20pct']
        lines.append(f"| {r['group']} / {r['label']} | {r['seed']} | {h['best_update']} | {h['stopped_early']} | "
                     f"{t['range']:.4f} | {t['change']:+.4f} | {t['total_drop']:.3f} | {h['seconds']:.0f} |")
    lines += ['', '## Declared claims (paired by seed)', '',
              '| claim | metric | a | b | a − b | SE | n | verdict |', '|---|---|---|---|---|---|---|---|']
    for c in claims:
        lines.append(f"| {c['claim']} | {c['metric']} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.3g} | "
                     f"{c['se']:.2g} | {c['n']} | {c['verdict']} |")
    return '\n'.join(lines) + '\n'


def write_report(out: Path, runs, seeds, codecs, config) -> tp.Dict[str, Path]:
    from ....models.fingerprint import platform_fingerprint
    records = load_runs(out)
    allr = [*records, *pairs(records), *codec_records(runs, seeds, codecs)]
    summary = summarize([{k: v for k, v in r.items() if k != 'history'} for r in allr])
    claims = study_claims(summary)
    cfg = dataclasses.asdict(config)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'json': out / 'results.json', 'markdown': out / 'report.md'}
    paths['json'].write_text(json.dumps({'config': cfg, 'seeds': list(seeds), 'platform': platform_fingerprint(),
                                         'runs': allr, 'summary': summary, 'claims': claims}, indent=1) + '\n')
    paths['markdown'].write_text(markdown(summary, claims, cfg, seeds, codecs, records))
    return paths
