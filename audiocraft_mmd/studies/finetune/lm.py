"""LM continuation on fine-tuned tokens, with `studies.lm.tokens`' cached tokens and tiny unconditional LMs.

A delay LM is trained on the stand-in's tokens (the "released" LM). For each fine-tuned codec, three LMs train on its
tokens with one schedule: that LM continued (`train_lm(init=...)`, fresh optimizer), a delay LM from scratch, and a
flatten LM from scratch (the factorization-gap reference). CE is scored on every window of the evaluate split.
"""
import dataclasses
import json
import logging
from pathlib import Path
import typing as tp

import torch

from ..lm.tokens.__main__ import spread_valid, tokens_of
from ..lm.tokens.lm import LMConfig, evaluate_ce, train_lm

logger = logging.getLogger(__name__)


def _train(pattern: str, tokens: dict, config: LMConfig, seed: int, init: tp.Optional[dict] = None):
    lm, history = train_lm(pattern, tokens['train'], spread_valid(tokens['valid']), tokens['card'], config, seed,
                           log=logger.info, init=init)
    ce = evaluate_ce(lm, tokens['evaluate'])
    return lm, {'ce_per_frame': sum(ce), 'best_update': history['best_update'], 'seconds': history['seconds'],
                'updates': history['updates'][-1], 'stopped_early': history['stopped_early']}


def _cached(path: Path, make: tp.Callable[[], dict]) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    record = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def released_lm(standin_sig: str, out: Path, config: LMConfig, train_seconds: float) -> tp.Tuple[dict, dict]:
    """(weights, record) of the delay LM on the stand-in's tokens (cached in `out`)."""
    weights = out / 'lm' / 'released_delay.pt'
    tokens = tokens_of(standin_sig, out, train_seconds)

    def make() -> dict:
        lm, metrics = _train('delay', tokens, config, seed=0)
        torch.save(lm.state_dict(), weights)
        return {'codec': standin_sig, 'label': 'released', 'seed': 0, 'metrics': metrics,
                'config': dataclasses.asdict(config)}
    weights.parent.mkdir(parents=True, exist_ok=True)
    record = _cached(out / 'lm' / 'released_delay.json', make)
    return torch.load(weights, weights_only=True), record


def continuation_records(codec_sig: str, seed: int, released: dict, out: Path, config: LMConfig,
                         train_seconds: float) -> tp.List[dict]:
    """The continued, scratch-delay and scratch-flatten LMs on one fine-tuned codec's tokens (each cached)."""
    tokens = tokens_of(codec_sig, out, train_seconds)
    records = []
    for label, pattern, init in (('continued', 'delay', released), ('scratch', 'delay', None),
                                 ('flatten', 'flatten', None)):
        def make() -> dict:
            _, metrics = _train(pattern, tokens, config, seed, init)
            return {'codec': codec_sig, 'label': label, 'seed': seed, 'metrics': metrics,
                    'config': dataclasses.asdict(config)}
        records.append(_cached(out / 'lm' / f'{codec_sig}_{label}_seed{seed}.json', make))
    return records
