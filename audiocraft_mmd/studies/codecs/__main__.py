"""`make reproduce`: train CPU-sized EnCodec-MMD models, evaluate them, write `reports/reproduce/`.

    python -m audiocraft_mmd.studies.codecs [--quick] [--seeds 0 1 2] [--groups weight alignment ...]
        [--trunk-epochs N] [--branch-epochs N] [--jobs 2] [--out reports/reproduce] [--set key=value ...]

Per seed a trunk trains at MMD weight 0, then every setting branches from it (see
`audiocraft_mmd.studies.codecs.plan`). Default: 3 seeds, all groups but exclude_shared (~2 h on 2 cores);
`--quick`: 2 seeds, weights 0 and 1e3 and parallel MMD, shorter training (~30 min). Resumable:
trained XPs are skipped (Dora resumes an interrupted one from its last epoch); kernel factors and
evaluations are cached in the XP folders.
"""
import argparse
import dataclasses
import logging
from pathlib import Path
import sys
import time
import typing as tp

from ...environment import CHECKPOINT_NAME, DATASET_EGS, REPO_ROOT
from .plan import BASE_SOLVER, FULL, GROUPS, KERNEL_VARIANTS, QUICK, Schedule, build_plan, check_common

logger = logging.getLogger('audiocraft_mmd.studies.codecs')
DEFAULT_MANIFEST = DATASET_EGS / 'evaluate'


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.studies.codecs', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help="the ~30-minute subset (defaults below change to it)")
    parser.add_argument('--seeds', type=int, nargs='+', help=f"default {list(FULL.seeds)}, quick {list(QUICK.seeds)}")
    parser.add_argument('--groups', nargs='+', choices=GROUPS,
                        help=f"default {list(FULL.groups)}, quick {list(QUICK.groups)}")
    parser.add_argument('--trunk-epochs', type=int, help=f"default {FULL.trunk_epochs}, quick {QUICK.trunk_epochs}")
    parser.add_argument('--branch-epochs', type=int,
                        help=f"default {FULL.branch_epochs}, quick {QUICK.branch_epochs}")
    parser.add_argument('--jobs', type=int, default=2, help="runs trained at once (one CPU thread each)")
    parser.add_argument('--out', type=Path, help="report folder (default reports/reproduce[_quick])")
    parser.add_argument('--manifest', default=str(DEFAULT_MANIFEST), help="held-out audio (evaluate split)")
    parser.add_argument('--max-segments', type=int, default=None, help="cap on evaluation segments")
    parser.add_argument('--no-fad', action='store_true', help="skip the musicnn FAD of the reconstructions")
    parser.add_argument('--set', dest='common', nargs='*', default=[], metavar='KEY=VALUE',
                        help="hydra overrides for every run (e.g. datasource.train=... optim.updates_per_epoch=30)")
    parser.add_argument('--skip-training', action='store_true', help="only evaluate and report what is trained")
    return parser


def schedule_of(args: argparse.Namespace) -> Schedule:
    """The plan's schedule: FULL or QUICK, with the flags given on the command line replacing its values."""
    from ..common.harness import schedule_of as replaced
    given = {'seeds': args.seeds, 'groups': args.groups, 'trunk_epochs': args.trunk_epochs,
             'branch_epochs': args.branch_epochs}
    return replaced(QUICK if args.quick else FULL, given)


def evaluate_all(statuses: tp.Sequence[dict], runs, protocol) -> tp.List[dict]:
    from ...models.fingerprint import checkpoint_fingerprint
    from .evaluation import evaluate_checkpoint
    from .claims import with_derived
    records = []
    audio = None  # the same audio for every run: loaded once, FAD reference embeddings computed once
    for run, status in zip(runs, statuses):
        folder = Path(status['folder']) if status.get('folder') else None
        if status['status'] not in ('done', 'trained') or folder is None or not (folder / CHECKPOINT_NAME).exists():
            continue
        if audio is None:
            from ...compat.checkpoints import checkpoint_config, load_state
            from .evaluation import load_audio
            cfg = checkpoint_config(load_state(folder / CHECKPOINT_NAME), folder / CHECKPOINT_NAME)
            audio = load_audio(protocol, cfg.sample_rate, cfg.channels)
        metrics = evaluate_checkpoint(folder / CHECKPOINT_NAME, protocol, cache=folder / 'reproduce_eval.json',
                                      audio=audio)
        records.append({'group': run.group, 'label': run.label, 'seed': run.seed, 'sig': status['sig'],
                        'weights_sha256': checkpoint_fingerprint(folder / CHECKPOINT_NAME),
                        'train_seconds': status['seconds'], 'metrics': with_derived(metrics)})
        logger.info("%s: tc_delay %.3g, mmd %.3g, msspec %.4g, si-snr %.1f dB, log-mel corr %.3f, cross corr %.3f, "
                    "min usage %.2f, fad %s", run.name, metrics['tc_delay'], metrics['mmd'], metrics['msspec'],
                    metrics['si_snr_db'], metrics['logmel_corr'], metrics['cross_corr'], metrics['min_usage'],
                    f"{metrics['fad_musicnn']:.3g}" if 'fad_musicnn' in metrics else '-')
    return records


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    from ...warning_filters import install_filters
    install_filters()
    from .evaluation import EvalProtocol
    from ..common.statistics import summarize
    from .claims import ablation_rows, paper_claims
    from .kernel_factors import trunk_factors
    from .runner import train_all
    from .writers import write_report

    begin = time.time()
    check_common(args.common)
    schedule = schedule_of(args)
    out = args.out or REPO_ROOT / 'reports' / ('reproduce_quick' if args.quick else 'reproduce')
    runs = build_plan(schedule)
    protocol = EvalProtocol(manifest=args.manifest, max_segments=args.max_segments, fad=not args.no_fad)
    logger.info("%d runs (%d trunks; groups %s), %d at a time; report in %s", len(runs),
                sum(r.is_trunk for r in runs), ', '.join(schedule.groups), args.jobs, out)

    factors_of: tp.Dict[Path, tp.Dict[str, float]] = {}

    def factors(folder: Path) -> tp.Dict[str, float]:
        if folder not in factors_of:
            factors_of[folder] = trunk_factors(folder, protocol, KERNEL_VARIANTS)
        return factors_of[folder]
    statuses = train_all(runs, args.common, out / 'logs', factors, jobs=args.jobs,
                         train_missing=not args.skip_training)
    train_seconds = time.time() - begin
    records = evaluate_all(statuses, runs, protocol)
    summary = summarize(records)
    claims, ablations = paper_claims(summary), ablation_rows(summary)
    seed_of = {Path(s['folder']): r.seed for r, s in zip(runs, statuses) if r.is_trunk}
    from ...models.fingerprint import platform_fingerprint
    meta = {'base_solver': BASE_SOLVER, 'common': list(args.common), 'seeds': list(schedule.seeds),
            'groups': list(schedule.groups), 'schedule': dataclasses.asdict(schedule), 'quick': args.quick,
            'protocol': protocol.key(), 'statuses': statuses, 'platform': platform_fingerprint(),
            'kernel_factors': {seed_of[f]: v for f, v in factors_of.items() if f in seed_of},
            'n_segments': int(records[0]['metrics']['n_segments']) if records else 0,
            'train_wall_seconds': train_seconds, 'total_wall_seconds': time.time() - begin}
    paths = write_report(out, records, summary, claims, ablations, meta)
    from ..common.harness import log_outcome
    return log_outcome(logger, claims, paths['markdown'], time.time() - begin, statuses, 'run')


if __name__ == '__main__':
    sys.exit(main())
