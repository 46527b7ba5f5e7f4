"""The token-LM study: delay vs flatten LMs trained to convergence on cached tokens of each codec.

    python -m audiocraft_mmd.studies.lm.tokens --codec-results reports/codecs/results.json [--seeds 0 1]
        [--codecs baseline mmd mmd_parallel mmd_conditional] [--out reports/lm_study] [--scale 1]
        [--stage train|report] [--dry-run]
        [--resume-from docs/lm_study/results.json [--weights]]

Codecs come from the codec reproduction's results.json (`python -m audiocraft_mmd.studies.codecs --groups weight
alignment shuffle`); its `tc_cond_delay` (nats) is reported beside the gap. Per (codec, seed): tokens of the
train (first `--train-seconds` of each file), valid and evaluate splits are cached in `<out>/tokens/`;
each LM's result (held-out CE per codebook, valid-CE history, convergence) in `<out>/runs/` with its
weights, so a rerun resumes. `--stage report` aggregates what exists and tests the declared claims
(`claims`). `--resume-from` seeds the run cache from a committed results.json (`resume`):
only missing LMs, and those that hit a since-raised cap, train; `--weights` retrains the reused ones that have no
weights here, checked against their records, for `fad_table`. `--scale N` is the device version (N x the LM's
updates, wider; `LMConfig.scaled`).
"""
import argparse
import dataclasses
import json
import logging
from pathlib import Path
import sys
import typing as tp

import torch

from ....environment import DATASET_EGS, REPO_ROOT
from ..vocabulary import PATTERNS, RVQ_CODECS
from .lm import LMConfig
from .report import codec_runs
from .resume import import_study, merge_codecs, run_path

logger = logging.getLogger('audiocraft_mmd.studies.lm.tokens')
VALID_WINDOWS = 128


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m audiocraft_mmd.studies.lm.tokens', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--codec-results', type=Path, nargs='+',
                   help="results.json of the codec reproduction (several: their codecs merged, e.g. other groups)")
    p.add_argument('--resume-from', type=Path, metavar='RESULTS_JSON',
                   help="a study's committed results.json: its LM records seed the run cache and its codec records "
                        "stand in for codecs not reproduced here (resume)")
    p.add_argument('--weights', action='store_true',
                   help="also train again every reused LM whose weights are not here (imported records, for "
                        "fad_table); the replay must equal its record (replay_weights)")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--codecs', nargs='+', default=list(RVQ_CODECS), choices=RVQ_CODECS)
    p.add_argument('--patterns', nargs='+', default=list(PATTERNS), choices=tuple(PATTERNS))
    p.add_argument('--out', type=Path, default=REPO_ROOT / 'reports' / 'lm_study')
    p.add_argument('--scale', type=int, default=1, help="device version: N x the updates (LMConfig.scaled)")
    p.add_argument('--max-updates', type=int, help="override the schedule's update cap")
    p.add_argument('--train-seconds', type=float, default=30., help="seconds of each training file tokenized")
    p.add_argument('--stage', choices=('train', 'report'), default='train')
    p.add_argument('--tokens-only', action='store_true', help="only compute the token caches (CPU, before a device)")
    p.add_argument('--device', default='cpu')
    p.add_argument('--dry-run', action='store_true', help="a few updates per LM: rehearse the whole pipeline")
    return p


def _cast(tokens: dict, dtype: torch.dtype) -> dict:
    return {k: [x.to(dtype) for x in v] if isinstance(v, list) else v.to(dtype) for k, v in tokens.items()}


def tokens_of(codec_sig: str, out: Path, train_seconds: float) -> tp.Dict[str, tp.Any]:
    from ....models.loaders import load_compression_model
    from .cache import cached_tokens, encode_manifest, windows
    key = {'sig': codec_sig, 'train_seconds': train_seconds, 'frames': LMConfig.frames, 'egs': 'train,valid,evaluate'}

    def make():
        codec = load_compression_model(f'//sig/{codec_sig}').eval()
        frames = LMConfig.frames
        tokens = {'train': encode_manifest(codec, DATASET_EGS / 'train', train_seconds),
                  **{split: torch.cat([windows(c, frames) for c in encode_manifest(codec, DATASET_EGS / split)])
                     for split in ('valid', 'evaluate')}}
        meta = {'card': codec.cardinality, 'frame_rate': float(codec.frame_rate)}
        return {**_cast(tokens, torch.int16), **meta}  # int16 on disk: a quarter of the carry to a device
    tokens = cached_tokens(out / 'tokens' / f'{codec_sig}.pt', key, make)
    return {**tokens, **_cast({k: tokens[k] for k in ('train', 'valid', 'evaluate')}, torch.long)}


def spread_valid(valid: torch.Tensor, n: int = VALID_WINDOWS) -> torch.Tensor:
    """`n` windows spread evenly over the valid split (early stopping; CE is reported on evaluate)."""
    idx = torch.linspace(0, len(valid) - 1, min(n, len(valid))).round().long()
    return valid[idx]


def reusable(cached: dict, key: dict) -> bool:
    """Whether a cached LM run answers `key`: the same codec and config, or one that differs only by a larger
    `max_updates` while the cached run stopped early below both caps. The schedule never reads the cap, so a
    larger cap replays an early-stopped run update for update (tested): only runs that hit the cap retrain."""
    if cached.get('key') == key:
        return True
    if not cached or cached['key']['sig'] != key['sig']:
        return False
    old, new = dict(cached['key']['config']), dict(key['config'])
    stopped_at = cached['history']['updates'][-1]
    return (cached['history']['stopped_early'] and stopped_at < min(old.pop('max_updates'), new.pop('max_updates'))
            and old == new)


def cached_run(codec: str, seed: int, pattern: str, sig: str, config: LMConfig, out: Path) -> tp.Optional[dict]:
    """The cached record of this LM when it answers `config` (`reusable`), else None."""
    path = run_path(out, codec, pattern, seed)
    cached = json.loads(path.read_text()) if path.exists() else {}
    return cached if reusable(cached, {'sig': sig, 'config': dataclasses.asdict(config)}) else None


def fit(codec: str, seed: int, pattern: str, sig: str, tokens: dict, config: LMConfig, device: str = 'cpu'):
    """Train one LM and measure it: (lm, its run record)."""
    from .lm import evaluate_ce, train_lm
    lm, history = train_lm(pattern, tokens['train'], spread_valid(tokens['valid']), tokens['card'], config, seed,
                           log=logger.info, device=device)
    ce = evaluate_ce(lm, tokens['evaluate'])
    metrics = {'ce_per_frame': sum(ce), **{f'ce_q{k + 1}': v for k, v in enumerate(ce)},
               'best_update': history['best_update'], 'train_seconds': history['seconds'],
               'tail_range': history['flat_last_20pct']['range'], 'tail_change': history['flat_last_20pct']['change']}
    logger.info("%s %s seed %d: evaluate CE %.4f nats/frame (best update %d, %.0f s)", codec, pattern, seed,
                sum(ce), history['best_update'], history['seconds'])
    key = {'sig': sig, 'config': dataclasses.asdict(config)}
    return lm, {'key': key, 'group': codec, 'label': pattern, 'seed': seed, 'sig': sig, 'metrics': metrics,
                'history': history}


def train_one(codec: str, seed: int, pattern: str, sig: str, tokens: dict, config: LMConfig, out: Path,
              device: str = 'cpu') -> dict:
    cached = cached_run(codec, seed, pattern, sig, config, out)
    if cached is not None:
        return cached
    lm, record = fit(codec, seed, pattern, sig, tokens, config, device)
    path = run_path(out, codec, pattern, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lm.state_dict(), path.with_suffix('.pt'))
    path.write_text(json.dumps(record, indent=1))
    return record


REPLAYED = ('updates', 'valid_ce', 'best_update', 'lr_drops_at')


def replay_weights(record: dict, tokens: dict, out: Path, device: str = 'cpu') -> None:
    """Train again the LM of a record whose weights are not here (an imported one) under the record's own config,
    and save the weights only if the replay is that run: its valid-CE history, drops and evaluate CE equal the
    record's (same tokens, seed and single-thread schedule). A replay that differs says the codec or the code
    changed since the record: refuse rather than score another model under the record's name."""
    config = LMConfig(**record['key']['config'])
    lm, again = fit(record['group'], record['seed'], record['label'], record['sig'], tokens, config, device)
    name = f"{record['group']} {record['label']} seed {record['seed']}"
    for field in REPLAYED:
        if again['history'].get(field) != record['history'].get(field):
            raise SystemExit(f"replay of {name} differs from its record in history.{field}: its weights are not "
                             "the recorded LM's (codec tokens or code changed)")
    if again['metrics']['ce_per_frame'] != record['metrics']['ce_per_frame']:
        raise SystemExit(f"replay of {name}: evaluate CE {again['metrics']['ce_per_frame']!r}, recorded "
                         f"{record['metrics']['ce_per_frame']!r}")
    torch.save(lm.state_dict(), run_path(out, record['group'], record['label'], record['seed']).with_suffix('.pt'))
    logger.info("replayed %s: the record's history exactly; weights saved", name)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    from ....warning_filters import install_filters
    install_filters()
    torch.set_num_threads(1)
    config = LMConfig().scaled(args.scale) if args.scale > 1 else LMConfig()
    if args.max_updates or args.dry_run:
        config = dataclasses.replace(config, max_updates=args.max_updates or 4, eval_every=2 if args.dry_run
                                     else config.eval_every)
    if args.codec_results is None and args.resume_from is None:
        raise SystemExit("--codec-results results.json (of python -m audiocraft_mmd.studies.codecs) is required")
    runs = codec_runs(args.codec_results or ())
    out = args.out / ('dry_run' if args.dry_run else '')
    if args.resume_from:
        runs = merge_codecs(import_study(args.resume_from, out), runs)
    missing = [(c, s) for s in args.seeds for c in args.codecs if (c, s) not in runs]
    if missing:
        sources = [str(p) for p in [*(args.codec_results or ()), *filter(None, [args.resume_from])]]
        raise SystemExit(f"{sources}: no codec run for {missing}")
    if args.stage == 'train':
        for seed in args.seeds:
            for codec in args.codecs:
                sig = runs[codec, seed]['sig']
                cached = {p: cached_run(codec, seed, p, sig, config, out) for p in args.patterns}
                todo = [p for p, record in cached.items() if record is None]
                replay = [r for r in cached.values() if args.weights and r is not None
                          and not run_path(out, codec, r['label'], seed).with_suffix('.pt').exists()]
                if not (todo or replay or args.tokens_only):
                    continue  # an imported codec's tokens are needed only by an LM still to train
                tokens = tokens_of(sig, args.out, args.train_seconds)
                if args.tokens_only:
                    continue
                for pattern in todo:
                    train_one(codec, seed, pattern, sig, tokens, config, out, args.device)
                for record in replay:
                    replay_weights(record, tokens, out, args.device)
    if args.tokens_only:
        return 0
    from .report import write_report
    write_report(out, runs, args.seeds, args.codecs, config)
    return 0


if __name__ == '__main__':
    sys.exit(main())
