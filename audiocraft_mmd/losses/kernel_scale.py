# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Per-kernel MMD weight factors at matched gradient scale (paper Table 3).

The paper adapts the MMD weight of each kernel "so that the magnitudes of the losses stayed
approximately consistent across kernels". What reaches the encoder is the gradient of
`weight * MMD`, so we equalize the gradient norm w.r.t. the streams: the factor of a kernel is

    factor(k) = ||d MMD_gaussian / d streams|| / ||d MMD_k / d streams||,

the geometric mean over stream sets (the ratios span orders of magnitude), and the kernel trains
with `losses.mmd = weight * factor(k)`. Used by `benchmarks/kernel_factors.py` (synthetic streams)
and `make reproduce` (streams of a trained trunk codec, `audiocraft_mmd.studies.codecs.kernel_factors`).
"""
import math
import typing as tp

import omegaconf
import torch

from .kernels import KERNELS
from .mmd import MMDLoss
from .mmd_config import MMDLossConfig

REFERENCE_KERNEL = 'gaussian'
# A loss called as `loss(streams, generator=...)`, like `MMDLoss`.
StreamLoss = tp.Callable[..., torch.Tensor]


def kernel_losses(mmd_cfg: omegaconf.DictConfig, kernels: tp.Iterable[str] = KERNELS) -> tp.Dict[str, MMDLoss]:
    """One `MMDLoss` per kernel, from an `mmd` config block with only `kernel` changed."""
    return {kernel: MMDLoss.from_config(MMDLossConfig.parse(omegaconf.OmegaConf.merge(mmd_cfg, {'kernel': kernel})))
            for kernel in kernels}


def gradient_norm(loss: StreamLoss, streams: torch.Tensor, seed: int = 0) -> tp.Tuple[float, float]:
    """(loss value, ||d loss / d streams||) at `streams` [B, K, D, T]; the loss's random draws
    (subsample, shuffles) come from a generator seeded with `seed`, so every kernel sees the same ones."""
    x = streams.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = loss(x, generator=torch.Generator().manual_seed(seed))
        (grad,) = torch.autograd.grad(value, x)
    return value.item(), grad.norm().item()


def kernel_factors(losses: tp.Mapping[str, StreamLoss], stream_sets: tp.Sequence[torch.Tensor],
                   reference: str = REFERENCE_KERNEL, seeds: tp.Optional[tp.Sequence[int]] = None,
                   log: tp.Optional[tp.Callable[[str], None]] = None) -> tp.Dict[str, float]:
    """Weight factor of each loss relative to `losses[reference]`: the geometric mean over
    `stream_sets` (each [B, K, D, T]) of ||grad reference|| / ||grad loss|| (see the module docstring).
    The reference's own factor is 1. `seeds[i]` seeds the losses' draws on set i (default: i)."""
    assert reference in losses, f"the reference kernel {reference!r} is not among {sorted(losses)}"
    assert stream_sets, "at least one stream set is needed"
    seeds = list(range(len(stream_sets))) if seeds is None else list(seeds)
    assert len(seeds) == len(stream_sets), f"{len(seeds)} seeds for {len(stream_sets)} stream sets"
    log_ratios: tp.Dict[str, tp.List[float]] = {name: [] for name in losses}
    for index, streams in enumerate(stream_sets):
        stats = {name: gradient_norm(loss, streams, seeds[index]) for name, loss in losses.items()}
        for name, (value, grad) in stats.items():
            if not (grad > 0 and math.isfinite(grad)):
                raise ValueError(f"kernel {name}: gradient norm {grad} on stream set {index}; no factor exists")
            log_ratios[name].append(math.log(stats[reference][1] / grad))
            if log is not None:
                log(f"set {index} {name:>16}: mmd {value: .3e}  |grad| {grad:.3e}")
    return {name: math.exp(sum(r) / len(r)) for name, r in log_ratios.items()}
