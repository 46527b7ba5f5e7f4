"""`make reproduce`: train CPU-sized EnCodec-MMD models, evaluate them, write `reports/reproduce/`.

    python -m audiocraft_mmd.reproduce [--seeds 0 1] [--groups weight alignment streams]
        [--jobs 2] [--out reports/reproduce] [--set optim.epochs=2 ...]

Resumable: trained XPs are skipped (Dora resumes an interrupted one from its last epoch) and
evaluations are cached in each XP folder. See `audiocraft_mmd.reproduce.plan` for the runs.
"""
import argparse
import logging
from pathlib import Path
import sys
import time
import typing as tp

from ..environment import CHECKPOINT_NAME, REPO_ROOT
from .plan import BASE_SOLVER, GROUPS, build_plan

logger = logging.getLogger('audiocraft_mmd.reproduce')
DEFAULT_MANIFEST = REPO_ROOT / 'dataset' / 'mmd_music' / 'egs' / 'evaluate'
DEFAULT_GROUPS = ('weight', 'alignment', 'streams', 'normalize')


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.reproduce', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--groups', nargs='+', default=list(DEFAULT_GROUPS), choices=GROUPS)
    parser.add_argument('--jobs', type=int, default=2, help="runs trained at once (one CPU thread each)")
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'reports' / 'reproduce')
    parser.add_argument('--manifest', default=str(DEFAULT_MANIFEST), help="held-out audio (evaluate split)")
    parser.add_argument('--max-segments', type=int, default=None, help="cap on evaluation segments")
    parser.add_argument('--set', dest='common', nargs='*', default=[], metavar='KEY=VALUE',
                        help="hydra overrides for every run (e.g. datasource.train=... optim.epochs=2)")
    parser.add_argument('--skip-training', action='store_true', help="only evaluate and report what is trained")
    return parser


def evaluate_all(statuses: tp.Sequence[dict], runs, protocol) -> tp.List[dict]:
    from .evaluation import evaluate_checkpoint, load_segments
    from .claims import with_derived
    from .runner import saved_config
    records = []
    segments = None  # the same audio for every run: loaded once, at the first run's sample rate
    for run, status in zip(runs, statuses):
        folder = Path(status['folder'])
        if status['status'] == 'failed' or not (folder / CHECKPOINT_NAME).exists():
            continue
        if segments is None:
            cfg = saved_config(folder)
            segments = load_segments(protocol.manifest, cfg.sample_rate, cfg.channels, protocol.segment_duration,
                                     protocol.max_segments)
        metrics = evaluate_checkpoint(folder / CHECKPOINT_NAME, protocol, cache=folder / 'reproduce_eval.json',
                                      segments=segments)
        records.append({'group': run.group, 'label': run.label, 'seed': run.seed, 'sig': status['sig'],
                        'train_seconds': status['seconds'], 'metrics': with_derived(metrics)})
        logger.info("%s: tc %.3g, tc_delay %.3g, mmd %.3g, msspec %.4g", run.name, metrics['tc'],
                    metrics['tc_delay'], metrics['mmd'], metrics['msspec'])
    return records


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    from ..warning_filters import install_filters
    install_filters()
    from .evaluation import EvalProtocol
    from .claims import ablation_rows, paper_claims, summarize
    from .runner import train_all, xp_of
    from .writers import write_report

    begin = time.time()
    runs = build_plan(args.seeds, args.groups)
    protocol = EvalProtocol(manifest=args.manifest, max_segments=args.max_segments)
    logger.info("%d runs (%s), %d at a time; report in %s", len(runs), ', '.join(args.groups), args.jobs, args.out)
    if args.skip_training:
        statuses = [{'run': r.name, 'sig': (xp := xp_of(r, args.common)).sig, 'folder': str(xp.folder),
                     'status': 'unknown', 'seconds': 0.} for r in runs]
    else:
        statuses = train_all(runs, args.common, args.out / 'logs', jobs=args.jobs)
    train_seconds = time.time() - begin
    records = evaluate_all(statuses, runs, protocol)
    summary = summarize(records)
    claims, ablations = paper_claims(summary), ablation_rows(summary)
    failed = [s for s in statuses if s['status'] == 'failed']
    meta = {'base_solver': BASE_SOLVER, 'common': list(args.common), 'seeds': list(args.seeds),
            'groups': list(args.groups), 'protocol': protocol.key(), 'statuses': statuses,
            'n_segments': int(records[0]['metrics']['n_segments']) if records else 0,
            'train_wall_seconds': train_seconds, 'total_wall_seconds': time.time() - begin}
    paths = write_report(args.out, records, summary, claims, ablations, meta)
    for claim in claims:
        logger.info("%-70s %s (diff %+.3g, SE %.2g)", claim['claim'], claim['verdict'], claim['diff'], claim['se'])
    logger.info("report: %s (%.0f s in all)", paths['markdown'], time.time() - begin)
    if failed:
        logger.error("%d run(s) failed: %s", len(failed), ', '.join(f"{s['run']} ({s['log']})" for s in failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
