"""The study's LMs on synthetic tokens whose factorization gap is known.

Codebook 0 is i.i.d. uniform over C values and codebook 1 of frame t copies codebook 0 of frame t + 1.
The delay pattern emits codebook 0 of frame t + 1 and codebook 1 of frame t at the same step, predicted
independently: each is uniform given the past, 2 ln C nats per frame. Flatten emits codebook 1 of frame t
first, then codebook 0 of frame t + 1 is a copy: ln C per frame. The gap is ln C (1.39 nats at C = 4).
"""
import dataclasses
import math

import pytest
import torch

from audiocraft_mmd.studies.lm.tokens.lm import LMConfig, evaluate_ce, flatness, train_lm
from audiocraft_mmd.studies.lm.tokens.report import pairs
from audiocraft_mmd.studies.lm.tokens.cache import windows

C = 4


def _codes(frames: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(C, (frames + 1,), generator=g)
    return torch.stack([first[:-1], first[1:]])  # [K=2, T]


def test_windows_shape():
    codes = _codes(35, 0)
    w = windows(codes, 8)
    assert w.shape == (4, 2, 8) and torch.equal(w[1], codes[:, 8:16])


@pytest.mark.slow  # ~1 min of CPU: two LMs trained
def test_flatten_closes_the_known_gap():
    config = LMConfig(dim=32, num_layers=1, frames=8, batch_size=32, lr=1e-2, max_updates=150, eval_every=50,
                      patience=10, warmup=10)
    train, valid = [_codes(4000, 0)], windows(_codes(800, 1), 8)
    ce = {}
    for pattern in ('delay', 'flatten'):
        lm, history = train_lm(pattern, train, valid, C, config, seed=0)
        ce[pattern] = evaluate_ce(lm, valid)
    # Delay cannot go below 2 ln C on the positions it predicts: its CE per frame stays near that.
    assert sum(ce['delay']) > 2 * math.log(C) - 0.1
    gap = pairs([{'group': 'x', 'label': p, 'seed': 0, 'metrics': {'ce_per_frame': sum(v),
                  **{f'ce_q{k + 1}': c for k, c in enumerate(v)}}} for p, v in ce.items()])[0]['metrics']
    # Flatten learns the copy: the gap is most of ln C (its first frame of each window is not predictable).
    assert gap['gap_nats_per_frame'] > 0.5 * math.log(C)


def test_flatness_of_a_plateau():
    f = flatness({'valid_ce': [5., 4., 3., 3.01, 3., 3.]})
    assert f['evaluations'] == 2 and abs(f['range']) < 1e-9 and f['total_drop'] == 2.


def test_plateaus_drop_the_lr_then_stop():
    # i.i.d. uniform codes: nothing to learn, so valid CE plateaus at once and every patience window ends in a
    # drop; after `lr_drops` drops the next plateau stops training, long before the cap
    config = LMConfig(dim=16, num_heads=2, num_layers=1, frames=4, batch_size=8, max_updates=400, eval_every=5,
                      patience=2, warmup=5, lr_drops=2)
    g = torch.Generator().manual_seed(0)
    train, valid = [torch.randint(C, (2, 300), generator=g)], torch.randint(C, (16, 2, 4), generator=g)
    lm, history = train_lm('delay', train, valid, C, config, seed=0)
    assert len(history['lr_drops_at']) == 2 and history['stopped_early']
    assert history['updates'][-1] < config.max_updates
    # each drop restarts from the best state: no evaluation after a drop is far above the best before it
    first_drop = history['updates'].index(history['lr_drops_at'][0])
    assert history['valid_ce'][first_drop + 1] < min(history['valid_ce'][:first_drop + 1]) + 0.5
    assert sum(evaluate_ce(lm, valid)) == pytest.approx(history['best_valid_ce'], abs=1e-5)


def test_a_larger_cap_replays_an_early_stopped_run(tmp_path):
    # `train_one` keeps an early-stopped run when only the cap grew: valid only if the run is the same
    # update for update under any cap above its stopping point (the schedule must not read the cap)
    from audiocraft_mmd.studies.lm.tokens.__main__ import reusable, train_one
    config = LMConfig(dim=16, num_heads=2, num_layers=1, frames=4, batch_size=8, max_updates=400, eval_every=5,
                      patience=2, warmup=5, lr_drops=1)
    g = torch.Generator().manual_seed(0)
    tokens = {'train': [torch.randint(C, (2, 300), generator=g)], 'valid': torch.randint(C, (16, 2, 4), generator=g),
              'evaluate': torch.randint(C, (8, 2, 4), generator=g), 'card': C}
    first = train_one('x', 0, 'delay', 'sig', tokens, config, tmp_path)
    assert first['history']['stopped_early']
    stopped_at = first['history']['updates'][-1]
    larger = dataclasses.replace(config, max_updates=stopped_at + 400)
    _, replay = train_lm('delay', tokens['train'], tokens['valid'], C, larger, seed=0)
    assert replay['updates'] == first['history']['updates'] and replay['valid_ce'] == first['history']['valid_ce']
    key = {'sig': 'sig', 'config': dataclasses.asdict(larger)}
    assert reusable(first, key)
    # a cap at or below the stopping point, another config field, or another codec: retrain
    at_stop = dataclasses.replace(config, max_updates=stopped_at)
    assert not reusable(first, {**key, 'config': dataclasses.asdict(at_stop)})
    assert not reusable(first, {**key, 'config': dataclasses.asdict(dataclasses.replace(larger, lr=1e-3))})
    assert not reusable(first, {**key, 'sig': 'other'})
    capped = {**first, 'history': {**first['history'], 'stopped_early': False}}
    assert not reusable(capped, key)
