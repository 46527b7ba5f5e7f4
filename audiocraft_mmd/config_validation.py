"""Checks of the configuration at solver start, before any data or model is loaded.

Each error names the config key and the bad value, so a typo fails in seconds rather than
after hours of training.
"""
import typing as tp

import omegaconf

KERNELS = ('gaussian', 'squared_inverse', 'linear', 'quadratic')
STREAMS = ('quantized', 'residual')
NORMALIZATIONS = ('none', 'codebook', 'dimension')


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def _require(condition: bool, key: str, value: tp.Any, why: str) -> None:
    if not condition:
        raise ConfigError(f"Invalid config `{key}={value!r}`: {why}")


def _positive_number(value: tp.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def validate_mmd_config(cfg: omegaconf.DictConfig) -> None:
    """Validate `losses.mmd` and the `mmd` block of the compression MMD solver."""
    if 'mmd' not in cfg or 'mmd' not in cfg.get('losses', {}):
        raise ConfigError("The compression_mmd solver needs `losses.mmd` and an `mmd` block "
                          "(see config/solver/compression/default.yaml)")
    weight = cfg.losses.mmd
    _require(isinstance(weight, (int, float)) and weight >= 0, 'losses.mmd', weight, "must be a number >= 0")
    mmd = cfg.mmd
    known = {'num_batches', 'kernel', 'sigmas', 'sigma', 'delay', 'streams', 'normalize', 'max_rows',
             'block_size', 'checkpoint_encoder', 'valid_batches', 'exclude_shared'}
    unknown = sorted(set(mmd.keys()) - known)
    _require(not unknown, 'mmd', unknown, f"unknown key(s); known keys: {sorted(known)}")
    _require(isinstance(mmd.num_batches, int) and mmd.num_batches >= 1, 'mmd.num_batches', mmd.num_batches,
             "must be an integer >= 1")
    _require(mmd.kernel in KERNELS, 'mmd.kernel', mmd.kernel, f"must be one of {KERNELS}")
    if mmd.kernel == 'gaussian':
        sigmas = list(mmd.sigmas) if mmd.sigmas is not None else []
        _require(len(sigmas) > 0 and all(_positive_number(s) for s in sigmas), 'mmd.sigmas', sigmas,
                 "must be a non-empty list of positive standard deviations")
    if mmd.kernel == 'squared_inverse':
        _require(_positive_number(mmd.sigma), 'mmd.sigma', mmd.sigma, "must be > 0")
    _require(mmd.streams in STREAMS, 'mmd.streams', mmd.streams, f"must be one of {STREAMS}")
    _require(mmd.normalize in NORMALIZATIONS, 'mmd.normalize', mmd.normalize, f"must be one of {NORMALIZATIONS}")
    _require(isinstance(mmd.delay, bool), 'mmd.delay', mmd.delay, "must be true or false")
    _require(isinstance(mmd.exclude_shared, bool), 'mmd.exclude_shared', mmd.exclude_shared,
             "must be true or false")
    _require(mmd.max_rows is None or (isinstance(mmd.max_rows, int) and mmd.max_rows >= 2), 'mmd.max_rows',
             mmd.max_rows, "must be null or an integer >= 2")
    _require(isinstance(mmd.block_size, int) and mmd.block_size >= 1, 'mmd.block_size', mmd.block_size,
             "must be an integer >= 1")
    _require(isinstance(mmd.valid_batches, int) and mmd.valid_batches >= 0, 'mmd.valid_batches',
             mmd.valid_batches, "must be an integer >= 0")
    num_codebooks = cfg.get('rvq', {}).get('n_q')
    if num_codebooks is not None:
        _require(num_codebooks >= 2 or weight == 0, 'rvq.n_q', num_codebooks,
                 "the independence loss needs at least 2 codebooks")
        if mmd.delay and cfg.get('dataset', {}).get('segment_duration') and cfg.get('seanet', {}).get('ratios'):
            hop = 1
            for ratio in cfg.seanet.ratios:
                hop *= ratio
            frames = int(cfg.dataset.segment_duration * cfg.sample_rate) // hop
            _require(frames >= num_codebooks or weight == 0, 'mmd.delay', mmd.delay,
                     f"the delay alignment needs segments of at least K={num_codebooks} frames, "
                     f"dataset.segment_duration gives {frames}")


def validate_musicgen_config(cfg: omegaconf.DictConfig) -> None:
    """Validate what the MusicGen solvers need before loading their codec."""
    ref = cfg.get('compression_model_checkpoint')
    _require(isinstance(ref, str) and len(ref) > 0, 'compression_model_checkpoint', ref,
             "set the tokenizer: //sig/SIG of a compression XP, a checkpoint, an exported file or //pretrained/NAME "
             "(it is null in the config so that dora can sign the override)")


def validate_config(cfg: omegaconf.DictConfig) -> None:
    """Validate what the chosen solver needs; called by the train entry before building it."""
    from .solvers.builders import SOLVERS
    _require(cfg.get('solver') in SOLVERS, 'solver', cfg.get('solver'), f"must be one of {SOLVERS}")
    if cfg.solver == 'compression_mmd':
        validate_mmd_config(cfg)
    if cfg.solver in ('musicgen', 'musicgen_mmd'):
        validate_musicgen_config(cfg)
