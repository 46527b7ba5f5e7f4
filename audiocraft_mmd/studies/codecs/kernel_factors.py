"""Kernel weight factors of the reproduction's kernels group, measured on each seed's trunk codec.

A kernel branch trains with `losses.mmd = CHOSEN_WEIGHT * factor`, where the factor equalizes the
norm of the MMD gradient w.r.t. the streams with the Gaussian kernel's (`losses.kernel_scale`),
measured on the streams the trunk produces: `draws` disjoint sets of evaluation segments, each the
size of a training macro-batch (`mmd.num_batches * dataset.batch_size` segments), encoded by the
trunk's best state, with the trunk's `mmd` block (kernel radii, delay, normalization, streams).
The factors are cached as JSON in the trunk's folder, keyed by its checkpoint file, so a resumed
reproduction gives its branches the same weight (and so the same Dora signature).
"""
import logging
from pathlib import Path
import typing as tp

import omegaconf
import torch

from ...environment import CHECKPOINT_NAME

logger = logging.getLogger(__name__)
FACTORS_NAME = 'reproduce_kernel_factors.json'
FACTORS_VERSION = 1


@torch.no_grad()
def trunk_stream_sets(model: torch.nn.Module, cfg: omegaconf.DictConfig, segments: torch.Tensor, draws: int,
                      seed: int = 0) -> tp.List[torch.Tensor]:
    """`draws` stream sets [B, K, D, T] of disjoint random macro-batches of `segments` [N, C, L]."""
    from ...losses import codebook_streams
    rows = int(cfg.mmd.num_batches) * int(cfg.dataset.batch_size)
    order = torch.randperm(len(segments), generator=torch.Generator().manual_seed(seed))
    draws = min(draws, len(segments) // rows) or 1  # a short evaluation set still gives one (smaller) set
    model.eval()
    sets = []
    for index in order[:draws * rows].split(rows):
        x, _ = model.preprocess(segments[index])
        sets.append(codebook_streams(model.quantizer, model.encoder(x), kind=cfg.mmd.streams))
    return sets


def trunk_factors(folder: Path, protocol: tp.Any, kernels: tp.Sequence[str], draws: int = 3) -> tp.Dict[str, float]:
    """{kernel: factor} for the trunk XP in `folder` (see the module docstring), from the cache when
    it was measured on the same checkpoint file with the same settings."""
    from ...losses.kernel_scale import REFERENCE_KERNEL, kernel_factors, kernel_losses
    from .evaluation import load_audio, load_codec
    from ..common.harness import CachedJSON, file_key
    checkpoint = folder / CHECKPOINT_NAME
    key = {'version': FACTORS_VERSION, **file_key(checkpoint), 'kernels': list(kernels), 'draws': draws,
           'manifest': str(protocol.manifest), 'segment_duration': protocol.segment_duration, 'seed': protocol.seed}
    cache = CachedJSON(folder / FACTORS_NAME, key, field='factors')
    factors = cache.get()
    if factors is not None:
        return factors
    cfg, model = load_codec(checkpoint)
    audio = load_audio(protocol, model.sample_rate, model.channels)
    sets = trunk_stream_sets(model, cfg, audio.segments, draws, protocol.seed)
    losses = kernel_losses(cfg.mmd, (REFERENCE_KERNEL, *kernels))
    factors = kernel_factors(losses, sets, log=logger.debug)
    logger.info("kernel factors on trunk %s (%d sets of %s): %s", folder.name, len(sets), tuple(sets[0].shape),
                ', '.join(f'{k} {v:.3g}' for k, v in factors.items()))
    return cache.put(factors, stream_shape=list(sets[0].shape), sets=len(sets))


def kernel_weight(chosen_weight: float, factor: float) -> str:
    """The `losses.mmd` value of a kernel branch, to 3 significant digits (a stable Dora signature)."""
    return f'{chosen_weight * factor:.3g}'
