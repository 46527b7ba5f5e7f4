"""A tiny unconditional audiocraft LMModel trained on precomputed tokens, with early stopping on valid CE.

Why not the MusicGen solver: the solver encodes audio every step and conditions on metadata; the
factorization gap is a property of the token distribution, so the study trains on cached tokens,
unconditionally, with audiocraft's own `LMModel` and pattern providers (`delay`: MusicGen's delay
pattern; `flatten`: `UnrolledPatternProvider`, one token per step). Both patterns use the same
architecture, segments, batches and update budget.

The loss is audiocraft's: cross-entropy of the logits the pattern marks valid, per codebook
(`MusicGenSolver._compute_cross_entropy`); CE per frame is the sum over codebooks (nats).
"""
import copy
import dataclasses
import math
import time
import typing as tp

import torch
from torch.nn import functional as F


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Architecture and schedule of the study's LMs (the same for both patterns)."""
    dim: int = 64
    num_heads: int = 4
    num_layers: int = 2
    frames: int = 16  # training segment (0.32 s at 50 Hz): flatten's sequences are K x this long (64 steps)
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    # a cap, not the schedule: early stopping ends training; at 2000, 8 of 12 LMs still improved at the cap
    max_updates: int = 5000
    eval_every: int = 50
    patience: int = 5  # evaluations without a new best valid CE before a learning-rate drop, or stopping
    warmup: int = 50
    # At a constant lr the valid CE of the plateau wanders by ~0.1 nats/frame (SGD noise), as much as the gap
    # measured: at each plateau, go back to the best state and divide the lr by `lr_drop_factor`, `lr_drops` times.
    lr_drops: int = 2
    lr_drop_factor: float = 10.

    def scaled(self, factor: int) -> 'LMConfig':
        """The device version: `factor` x the width-squared (dim x sqrt) and the updates."""
        return dataclasses.replace(self, dim=int(self.dim * math.sqrt(factor) // 16 * 16),
                                   max_updates=self.max_updates * factor)


def pattern_provider(pattern: str, n_q: int):
    from audiocraft.modules.codebooks_patterns import DelayedPatternProvider, UnrolledPatternProvider
    if pattern == 'delay':
        return DelayedPatternProvider(n_q=n_q, delays=list(range(n_q)))
    if pattern == 'flatten':
        return UnrolledPatternProvider(n_q=n_q, flattening=list(range(n_q)), delays=[0] * n_q)
    raise ValueError(f"pattern must be 'delay' or 'flatten', got {pattern!r}")


def build_lm(pattern: str, n_q: int, card: int, config: LMConfig):
    """An unconditional LMModel (no conditioners) with `pattern`."""
    from audiocraft.models.lm import LMModel
    from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider
    fuser = ConditionFuser({'cross': [], 'prepend': [], 'sum': [], 'input_interpolate': []})
    return LMModel(pattern_provider(pattern, n_q), ConditioningProvider({}), fuser, n_q=n_q, card=card,
                   dim=config.dim, num_heads=config.num_heads, num_layers=config.num_layers, causal=True,
                   cross_attention=False, cfg_dropout=0., cfg_coef=1.0, hidden_scale=4)


def codebook_cross_entropy(lm, codes: torch.Tensor) -> torch.Tensor:
    """Mean CE per codebook [K] (nats per token) of codes [B, K, T], over the positions the pattern predicts."""
    out = lm.compute_predictions(codes, [], condition_tensors={})
    logits, mask = out.logits, out.mask  # [B, K, T, card], [B, K, T]
    ce = []
    for k in range(codes.shape[1]):
        m = mask[:, k].reshape(-1)
        ce.append(F.cross_entropy(logits[:, k].reshape(-1, logits.shape[-1])[m], codes[:, k].reshape(-1)[m]))
    return torch.stack(ce)


@torch.no_grad()
def evaluate_ce(lm, windows: torch.Tensor, batch_size: int = 64) -> tp.List[float]:
    """CE per codebook (nats per token) over all windows [N, K, T], weighted by window."""
    lm.eval()
    device = next(lm.parameters()).device
    total = torch.zeros(windows.shape[1], device=device)
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size].to(device)
        total += codebook_cross_entropy(lm, batch) * len(batch)
    lm.train()
    return (total / len(windows)).tolist()


def random_windows(files: tp.Sequence[torch.Tensor], batch_size: int, frames: int,
                   rng: torch.Generator) -> torch.Tensor:
    """[B, K, frames] random windows of the files' codes [K, T_i], files drawn in proportion to their
    length."""
    lengths = torch.tensor([max(f.shape[-1] - frames, 0) + 1 for f in files], dtype=torch.float)
    picks = torch.multinomial(lengths, batch_size, replacement=True, generator=rng)
    out = []
    for i in picks.tolist():
        start = int(torch.randint(int(lengths[i]), (1,), generator=rng))
        out.append(files[i][:, start:start + frames])
    return torch.stack(out)


def train_lm(pattern: str, train: tp.Sequence[torch.Tensor], valid: torch.Tensor, card: int, config: LMConfig,
             seed: int, log: tp.Optional[tp.Callable[[str], None]] = None,
             device: str = 'cpu', init: tp.Optional[tp.Mapping[str, torch.Tensor]] = None) -> tp.Tuple[tp.Any, dict]:
    """Train one LM; returns (the LM at its best valid CE, history {'updates', 'valid_ce', 'best_update', ...}).

    Args:
        train: codes [K, T_i] per training file; valid: windows [N, K, frames].
        init: weights to continue from (an LM of the same pattern and config, e.g. trained on another codec's
            tokens); a fresh optimizer and schedule either way.
    """
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    lm = build_lm(pattern, train[0].shape[0], card, config).to(device)
    if init is not None:
        lm.load_state_dict(init)
    valid = valid.to(device)
    opt = torch.optim.AdamW(lm.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    history: tp.Dict[str, tp.Any] = {'updates': [], 'valid_ce': [], 'train_ce': [], 'lr_drops_at': []}

    def lr_factor(u: int) -> float:  # warmup, then / lr_drop_factor per drop so far
        return min(1., (u + 1) / config.warmup) / config.lr_drop_factor ** len(history['lr_drops_at'])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    best, best_state, since_best, begin, running = math.inf, None, 0, time.time(), []
    for update in range(1, config.max_updates + 1):
        batch = random_windows(train, config.batch_size, config.frames, rng).to(device)
        loss = codebook_cross_entropy(lm, batch).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if update % config.eval_every and update != config.max_updates:
            continue
        ce = sum(evaluate_ce(lm, valid))
        history['updates'].append(update)
        history['valid_ce'].append(ce)
        history['train_ce'].append(sum(running) / len(running) * train[0].shape[0])
        running = []
        if ce < best - 1e-4:
            best, since_best = ce, 0
            best_state = copy.deepcopy((lm.state_dict(), opt.state_dict()))
        else:
            since_best += 1
        if log:
            log(f"{pattern} seed {seed} update {update}: valid CE {ce:.4f} nats/frame (best {best:.4f})")
        if since_best >= config.patience:
            if len(history['lr_drops_at']) == config.lr_drops:
                break
            history['lr_drops_at'].append(update)
            lm.load_state_dict(best_state[0])
            opt.load_state_dict(best_state[1])
            for group in opt.param_groups:  # load_state_dict reset it to the best's lr; the schedule applies next
                group['lr'] = config.lr * lr_factor(sched.last_epoch)
            since_best = 0
    lm.load_state_dict(best_state[0])
    lm.cpu().eval()
    history.update(best_update=history['updates'][history['valid_ce'].index(best)], best_valid_ce=best,
                   seconds=time.time() - begin, stopped_early=since_best >= config.patience)
    history['flat_last_20pct'] = flatness(history)
    return lm, history


def flatness(history: dict, fraction: float = 0.2) -> dict:
    """Valid CE over the last `fraction` of the evaluations: its range and the change from that
    window's first to its last evaluation, against the total drop from the first evaluation (nats/frame)."""
    ce = history['valid_ce']
    n = max(2, int(math.ceil(len(ce) * fraction)))
    tail = ce[-n:]
    return {'evaluations': n, 'range': max(tail) - min(tail), 'change': tail[-1] - tail[0],
            'total_drop': ce[0] - min(ce)}
