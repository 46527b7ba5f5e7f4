"""Run the fine-tuning rehearsal (issue 40, item 6) and write its report.

    python -m audiocraft_mmd.studies.finetune --standin SIG [--seeds 0 1 2] [--epochs 1] [--jobs 3]
        [--stage train|evaluate|lm|report] [--out reports/finetune_rehearsal] [--docs docs/finetune_rehearsal]

`--standin`: the Dora signature of the stand-in release (trained with `plan.STANDIN_ARGS`). Its transformers-format
export (`--package`, default the packaged `audiocraft_mmd/pretrained/encodec-cpu-standin`) is published into a hub
cache under `<out>/hub`, and every fine-tuning runs `continue_from=//pretrained/<plan.STANDIN_REPO>` with
`HF_HUB_OFFLINE=1` and `HF_HUB_CACHE` pointing there: the path the real release takes. Stages run in order up to
`--stage` (each resumable: trained XPs, evaluations and LMs are cached); the report always comes last.
"""
import argparse
import json
import logging
import os
from pathlib import Path
import sys
import typing as tp

from ...environment import REPO_ROOT, SIG_PREFIX, repo_relative
from . import plan

logger = logging.getLogger('audiocraft_mmd.studies.finetune')
STAGES = ('train', 'evaluate', 'lm', 'report')
PACKAGE = REPO_ROOT / 'audiocraft_mmd' / 'pretrained' / 'encodec-cpu-standin'


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m audiocraft_mmd.studies.finetune', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--standin', required=True, help="Dora signature of the stand-in release")
    p.add_argument('--package', type=Path, default=PACKAGE, help="its transformers-format export")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--modes', nargs='+', choices=list(plan.MODES), default=list(plan.MODES))
    p.add_argument('--full-seeds', type=int, nargs='+', help="seeds of the full fine-tunings (default: --seeds)")
    p.add_argument('--epochs', type=int, default=1, help="fine-tuning epochs")
    p.add_argument('--updates-per-epoch', type=int, default=60)
    p.add_argument('--max-segments', type=int, help="cap on the evaluation segments (1 s each; default: all)")
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--stage', choices=STAGES, default='report', help="run the stages up to this one")
    p.add_argument('--out', type=Path, default=REPO_ROOT / 'reports' / 'finetune_rehearsal')
    p.add_argument('--docs', type=Path, default=REPO_ROOT / 'docs' / 'finetune_rehearsal')
    p.add_argument('--skip-training', action='store_true', help="only evaluate and report what is trained")
    p.add_argument('--no-fad', action='store_true', help="leave out FAD and FAD-infinity")
    p.add_argument('--lm-updates', type=int, default=1000, help="update cap of each LM (early stopping inside)")
    p.add_argument('--train-seconds', type=float, default=30., help="seconds of each training file tokenized")
    return p


def train_all(runs: tp.Sequence[plan.Run], out: Path, jobs: int, skip: bool) -> tp.List[dict]:
    """Train (or resume) the runs; with `skip`, only report which are trained (status 'done' or 'failed')."""
    from ..common.runner import is_trained, train_many, xp_of
    if skip:
        return [{'run': run.name, 'sig': xp.sig, 'folder': str(xp.folder), 'seconds': 0.,
                 'status': 'done' if is_trained(xp) else 'failed'} for run, xp in ((r, xp_of(r, ())) for r in runs)]
    return train_many([(run, xp_of(run, ()), run.argv()) for run in runs], out / 'logs', jobs)


def evaluate_all(statuses: tp.Sequence[dict], runs: tp.Sequence[plan.Run], standin: str, package: Path, out: Path,
                 fad: bool, max_segments: tp.Optional[int]) -> tp.Tuple[dict, tp.List[dict]]:
    """(the stand-in's metrics, one record per trained run), each evaluation cached in `<out>/eval/`. The reference
    is the published stand-in as the fine-tunings load it (`package`); its training config gives the protocol's
    MSSpec and MMD settings."""
    from ...environment import CHECKPOINT_NAME, DATASET_EGS, xp_folder
    from ..codecs.evaluation import EvalProtocol, load_audio, load_codec
    from ...models.codec_source import load_source_model, resolve_source
    from ...metrics.code_use import with_live
    from .evaluation import measure

    protocol = EvalProtocol(manifest=str(DATASET_EGS / 'evaluate'), fad=fad, max_segments=max_segments)
    cfg, _ = load_codec(xp_folder(f'{SIG_PREFIX}{standin}') / CHECKPOINT_NAME)
    reference = load_source_model(resolve_source(str(package)))
    audio = load_audio(protocol, reference.sample_rate, reference.channels)

    def cached(sig: str, make: tp.Callable[[], dict]) -> dict:
        path = out / 'eval' / f'{sig}.json'
        if path.exists():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        result = make()
        path.write_text(json.dumps(result, indent=1))
        return result

    standin_metrics = cached(standin, lambda: measure(reference, cfg, reference, audio, protocol))
    records = []
    for run, status in zip(runs, statuses):
        if status['status'] == 'failed':
            continue
        checkpoint = Path(status['folder']) / CHECKPOINT_NAME
        logger.info("evaluating %s (%s)", run.name, status['sig'])
        metrics = cached(status['sig'], lambda: measure(*reversed(load_codec(checkpoint)), reference, audio, protocol))
        records.append({'group': run.group, 'label': run.label, 'seed': run.seed, 'sig': status['sig'],
                        'metrics': with_live(metrics)})
    return with_live(standin_metrics), records


def lm_all(records: tp.Sequence[dict], standin: str, out: Path, updates: int, train_seconds: float) -> tp.List[dict]:
    """The released LM and, per seed, the LMs on the encoder-only MMD codec's tokens (`lm.continuation_records`)."""
    from ..lm.tokens.lm import LMConfig
    from .lm import continuation_records, released_lm
    config = LMConfig(max_updates=updates)
    weights, released = released_lm(standin, out, config, train_seconds)
    lm_records = [released]
    for record in records:
        if record['group'] == 'encoder' and record['label'] == report_labels()[0]:
            lm_records += continuation_records(record['sig'], record['seed'], weights, out, config, train_seconds)
    return lm_records


def report_labels() -> tp.Tuple[str, str]:
    from .report import CONTROL_LABEL, MMD_LABEL
    return MMD_LABEL, CONTROL_LABEL


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    args = get_parser().parse_args(argv)
    from ...models.hub_cache import publish
    publish(args.package, args.out / 'hub', plan.STANDIN_REPO)
    os.environ.update(HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(args.out / 'hub'))
    runs = plan.runs(args.seeds, args.epochs, args.updates_per_epoch, [m for m in args.modes if m != 'full'])
    if 'full' in args.modes:
        runs += plan.runs(args.full_seeds or args.seeds, args.epochs, args.updates_per_epoch, ['full'])
    last = STAGES.index(args.stage)
    statuses = train_all(runs, args.out, args.jobs, args.skip_training)
    results: dict = {'meta': {'standin': args.standin, 'standin_args': list(plan.STANDIN_ARGS),
                              'seeds': args.seeds, 'epochs': args.epochs,
                              'updates_per_epoch': args.updates_per_epoch, 'repo_id': plan.STANDIN_REPO,
                              'package': repo_relative(args.package),
                              'statuses': [{k: s[k] for k in ('run', 'sig', 'status', 'seconds')} for s in statuses]}}
    if last >= STAGES.index('evaluate'):
        results['standin'], results['runs'] = evaluate_all(statuses, runs, args.standin, args.package, args.out,
                                                           not args.no_fad, args.max_segments)
    if last >= STAGES.index('lm') and results.get('runs'):
        results['lm'] = lm_all(results['runs'], args.standin, args.out, args.lm_updates, args.train_seconds)
    from .writer import write
    write(args.docs, results)
    return 0 if all(s['status'] != 'failed' for s in statuses) else 1


if __name__ == '__main__':
    sys.exit(main())
