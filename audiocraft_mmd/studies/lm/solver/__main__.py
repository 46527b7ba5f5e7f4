"""`make reproduce-lm`: delay and flatten LMs on the tokens of the CPU codecs, evaluated, claims tested.

    python -m audiocraft_mmd.studies.lm.solver [--quick] [--codec-results reports/reproduce/results.json]
        [--codec mmd@0=//sig/SIG ...] [--seeds 0 1 2] [--jobs 2] [--out reports/reproduce_lm] [--set KEY=VALUE ...]

Codecs come from the codec reproduction (`python -m audiocraft_mmd.studies.codecs`; see `codecs`), which is
run for the missing ones unless --no-train-codecs. Resumable: trained LM XPs are skipped (Dora resumes
an interrupted one) and evaluations are cached in `<out>/cache/` under their protocol. See `plan`.
"""
import argparse
import logging
from pathlib import Path
import sys
import time
import typing as tp

from ....environment import CHECKPOINT_NAME, DATASET_EGS, REPO_ROOT, SIG_PREFIX, xp_folder
from .evaluation import LMProtocol
from ..vocabulary import CODECS, PATTERNS
from .plan import BASE_SOLVER, FULL, QUICK, build_plan, check_common

logger = logging.getLogger('audiocraft_mmd.studies.lm.solver')


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.studies.lm.solver', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help=f"the quick schedule ({QUICK})")
    parser.add_argument('--seeds', type=int, nargs='+')
    parser.add_argument('--codecs', nargs='+', choices=list(CODECS))
    parser.add_argument('--patterns', nargs='+', choices=list(PATTERNS))
    parser.add_argument('--epochs', type=int, help="LM epochs (of optim.updates_per_epoch updates)")
    parser.add_argument('--jobs', type=int, default=2, help="LMs trained at once (one CPU thread each)")
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'reports' / 'reproduce_lm')
    parser.add_argument('--codec', action='append', default=[], metavar='NAME[@SEED]=//sig/SIG')
    parser.add_argument('--codec-results', help="results.json of the codec reproduction")
    parser.add_argument('--no-train-codecs', action='store_true', help="fail instead of training missing codecs")
    parser.add_argument('--codec-args', nargs='*', default=[], help="extra arguments of the codec reproduction")
    parser.add_argument('--heldout', default=str(DATASET_EGS / 'evaluate'), help="held-out manifest (evaluate split)")
    parser.add_argument('--floor', default=str(DATASET_EGS / 'train'),
                        help="manifest of the real-data floor (train split)")
    parser.add_argument('--num-clips', type=int, default=LMProtocol.num_clips)
    parser.add_argument('--clip-seconds', type=float, default=LMProtocol.clip_seconds)
    parser.add_argument('--hop-seconds', type=float, default=LMProtocol.hop_seconds)
    parser.add_argument('--ce-segments', type=int, default=LMProtocol.ce_segments)
    parser.add_argument('--gen-batch-size', type=int, default=LMProtocol.gen_batch_size)
    parser.add_argument('--flatten-clips', type=int, help="clips flatten LMs generate (default --num-clips); "
                        "fewer skip their FAD / tag KL (~15 min per flatten LM on 2 cores at 256 clips)")
    parser.add_argument('--timing-clips', type=int, default=LMProtocol.timing_clips,
                        help="clips of the one generation batch that times every LM")
    parser.add_argument('--no-music-metrics', action='store_true', help="skip FAD / tag KL (no musicnn)")
    parser.add_argument('--set', dest='common', nargs='*', default=[], metavar='KEY=VALUE',
                        help="hydra overrides for every LM (e.g. datasource.train=...)")
    parser.add_argument('--skip-training', action='store_true', help="only evaluate and report what is trained")
    return parser


def schedule_of(args: argparse.Namespace):
    """The plan's schedule: FULL or QUICK, with the flags given on the command line replacing its values."""
    from ...common.harness import schedule_of as replaced
    given = {'seeds': args.seeds, 'codecs': args.codecs, 'patterns': args.patterns, 'epochs': args.epochs}
    return replaced(QUICK if args.quick else FULL, given)


class Lazy:
    """A value computed on first use (the musicnn reference and the floor clips: only when a cache misses)."""
    def __init__(self, make: tp.Callable[[], tp.Any]):
        self.make, self.value, self.done = make, None, False

    def __call__(self) -> tp.Any:
        if not self.done:
            self.value, self.done = self.make(), True
        return self.value


def evaluate_study(runs, statuses, codec_sigs, protocol: LMProtocol, cache_dir: Path) -> tp.Tuple[list, list, tp.Any]:
    """(LM records, codec records, floor record), each evaluation cached in `cache_dir`."""
    from .evaluation import evaluate_codec, evaluate_lm
    from ...common.harness import CachedJSON
    from ..clips import random_clips
    from .quality import MusicQuality
    from ...common.runner import saved_config
    key, reference_key = protocol.key(), protocol.reference_key()
    quality = Lazy(lambda: MusicQuality(protocol.heldout, protocol.musicnn, protocol.hop_seconds)
                   if protocol.music_metrics else None)
    sample_rate = int(saved_config(xp_folder(SIG_PREFIX + next(iter(codec_sigs.values())))).sample_rate)
    floor_clips = Lazy(lambda: random_clips(protocol.floor, protocol.num_clips, protocol.clip_seconds, sample_rate,
                                            seed=protocol.seed))
    floor = None
    if protocol.music_metrics:
        cache = CachedJSON(cache_dir / 'real_floor.json', {**reference_key, 'sample_rate': sample_rate})
        metrics = cache.get() or cache.put(quality().score(floor_clips(), sample_rate))
        floor = {'group': 'real', 'label': 'floor', 'seed': protocol.seed, 'sig': None, 'metrics': metrics}
    codec_records = []
    for (codec, seed), sig in codec_sigs.items():
        cache = CachedJSON(cache_dir / f'codec_{sig}.json', {**reference_key, 'sig': sig})
        metrics = cache.get() or cache.put(evaluate_codec(
            sig, protocol, floor_clips() if protocol.music_metrics else None, quality()))
        codec_records.append({'group': codec, 'label': 'codec', 'seed': seed, 'sig': sig, 'metrics': metrics})
        logger.info("codec %s@%d (%s): unigram entropy %.3f nats/frame", codec, seed, sig, metrics['unigram_per_frame'])
    lm_records = []
    for run, status in zip(runs, statuses):
        folder = Path(status['folder'])
        if status['status'] in ('failed', 'untrained') or not (folder / CHECKPOINT_NAME).exists():
            continue
        cache = CachedJSON(cache_dir / f"lm_{status['sig']}.json", {**key, 'sig': status['sig']})
        metrics = cache.get() or cache.put(evaluate_lm(str(folder), protocol, quality(), run.pattern))
        lm_records.append({'group': run.group, 'label': run.label, 'seed': run.seed, 'sig': status['sig'],
                           'codec_sig': run.codec_sig, 'train_seconds': status['seconds'], 'metrics': metrics})
        logger.info("%s: CE %.3f nats/frame, FAD %s", run.name, metrics['ce_per_frame'], metrics.get('fad', '-'))
    return lm_records, codec_records, floor


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    from ....warning_filters import install_filters
    install_filters()
    from .claims import summarize_study
    from ..codecs import resolve_codecs
    from .runner import train_lms
    from .writers import write_report
    begin = time.time()
    schedule = schedule_of(args)
    check_common(args.common)
    codec_sigs = resolve_codecs(schedule.codecs, schedule.seeds, args.codec, args.codec_results,
                                None if args.no_train_codecs else args.out / 'codecs', args.codec_args)
    runs = build_plan(schedule, codec_sigs)
    protocol = LMProtocol(heldout=args.heldout, floor=args.floor, ce_segments=args.ce_segments,
                          num_clips=args.num_clips, clip_seconds=args.clip_seconds, hop_seconds=args.hop_seconds,
                          gen_batch_size=args.gen_batch_size, music_metrics=not args.no_music_metrics,
                          flatten_clips=args.flatten_clips, timing_clips=args.timing_clips)
    logger.info("%d LMs, %d at a time; report in %s", len(runs), args.jobs, args.out)
    statuses = train_lms(runs, args.common, args.out / 'logs', jobs=args.jobs, train_missing=not args.skip_training)
    train_seconds = time.time() - begin
    lm_records, codec_records, floor = evaluate_study(runs, statuses, codec_sigs, protocol, args.out / 'cache')
    records, summary, claims = summarize_study(lm_records, codec_records, floor)
    meta = {'base_solver': BASE_SOLVER, 'common': list(args.common), 'seeds': list(schedule.seeds),
            'epochs': schedule.epochs, 'codec_sigs': {f'{c}@{s}': v for (c, s), v in codec_sigs.items()},
            'protocol': protocol.key(), 'statuses': statuses, 'train_wall_seconds': train_seconds,
            'total_wall_seconds': time.time() - begin}
    paths = write_report(args.out, records, summary, claims, meta)
    from ...common.harness import log_outcome
    return log_outcome(logger, claims, paths['markdown'], time.time() - begin, statuses, 'LM')


if __name__ == '__main__':
    sys.exit(main())
