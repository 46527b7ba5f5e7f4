# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""The owner of the `mmd` config block: `MMDConfig`, parsed and checked once at solver start, frozen.

The block holds the loss's keys (`MMDLossConfig`, also parsed alone by the tools that build a loss from a saved
block) and the solver's (`MMDConfig`: macro-batch, bank, scope, streams). Every rule about these keys is here:
the loss's own options are checked by building the loss (`MMDLoss` and its estimator own them, an `OptionError`
names the key), the rules between keys are derived from the estimator's capabilities
(`estimators.bank_conflicts`, `estimators.scope_conflicts`), and the two rules that need another block's value
are here too, called by that block's owner: :func:`check_streams` (the quantizer's stream kinds,
`models.builders`) and :func:`check_cadence` (`checkpoint.every_updates`, `solvers.update_checkpoints`).

Keys added after XPs were trained get, when absent, the value that does what those XPs did: `ADDED_KEYS` is the
one table of them, for the whole block (the reproduce harness reads it too, to tell an added key from a drift).
"""
import dataclasses
import typing as tp

import omegaconf

from ..config_validation import ConfigError, is_int, require
from .estimators import OptionError, bank_conflicts, estimator_class, estimator_keys, scope_conflicts
from .estimators.base import bank_requirements
from .kernels import KERNELS, build_kernel
from .mmd import MMDLoss

# The paper's weight of the independence loss (`losses.mmd`, section 4.1), the chosen point of the weight sweeps.
PAPER_WEIGHT = 1000

# Keys of the `mmd` block added after XPs were trained -> the value those XPs trained with.
ADDED_KEYS: tp.Dict[str, tp.Any] = {'estimator': 'exact', 'scope': 'rank', 'shuffle': 'global', 'marginals': 'shuffle',
                                    'features': 1024}


def with_added_keys(block: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """The block as a plain dict, with every absent `ADDED_KEYS` key filled in."""
    plain = omegaconf.OmegaConf.to_container(block, resolve=True) if isinstance(block, omegaconf.DictConfig) \
        else dict(block)
    return {**ADDED_KEYS, **plain}  # type: ignore[arg-type]


def _checker(cfg: tp.Mapping[str, tp.Any], prefix: str) -> tp.Callable[[str, bool, str], None]:
    def check(key: str, ok: bool, why: str) -> None:
        require(ok, f'{prefix}.{key}', cfg.get(key), why)
    return check


@dataclasses.dataclass(frozen=True)
class MMDLossConfig:
    """What `MMDLoss` reads from the `mmd` block (see `MMDLoss` for the meaning of each key)."""
    kernel: str = 'gaussian'
    kernel_kwargs: tp.Tuple[tp.Tuple[str, tp.Any], ...] = ()  # the kernel's own `config_keys`, as (key, value)
    delay: bool = True
    normalize: str = 'none'
    max_rows: tp.Optional[int] = None
    block_size: int = 1024
    exclude_shared: bool = False
    shuffle: str = 'global'
    marginals: str = 'shuffle'
    estimator_kwargs: tp.Tuple[tp.Tuple[str, tp.Any], ...] = ()  # the estimators' `config_keys` in the block

    OWN_KEYS: tp.ClassVar[tp.Tuple[str, ...]] = ('kernel', 'delay', 'normalize', 'max_rows', 'block_size',
                                                 'exclude_shared', 'shuffle', 'marginals')

    @classmethod
    def keys(cls) -> tp.Tuple[str, ...]:
        """Keys of the `mmd` block this config reads: its own, the kernels' and the estimators' arguments."""
        kernel_keys = (key for kernel in KERNELS.values() for key in kernel.config_keys)
        return tuple(dict.fromkeys((*cls.OWN_KEYS, *kernel_keys, *estimator_keys())))

    @classmethod
    def parse(cls, block: tp.Mapping[str, tp.Any], prefix: str = 'mmd') -> 'MMDLossConfig':
        """Checks the loss keys of an `mmd` block (other keys are ignored); a `ConfigError` names the bad key."""
        cfg = with_added_keys(block)
        check = _checker(cfg, prefix)
        check('kernel', cfg.get('kernel') in KERNELS, f"must be one of {tuple(KERNELS)}")
        kernel_cls = KERNELS[cfg['kernel']]
        kwargs = tuple((key, _number(cfg.get(key))) for key in kernel_cls.config_keys)
        try:  # the kernel's constructor owns the checks of its arguments
            build_kernel(cfg['kernel'], **dict(kwargs))
        except (TypeError, ValueError) as exc:
            keys = ', '.join(f'{prefix}.{k}' for k in kernel_cls.config_keys)
            raise ConfigError(f"Invalid config `{keys}` for kernel {cfg['kernel']!r}: {exc}") from exc
        for key in ('delay', 'exclude_shared'):
            check(key, isinstance(cfg.get(key), bool), "must be true or false")
        check('max_rows', cfg.get('max_rows') is None or is_int(cfg['max_rows']), "must be null or an integer")
        check('block_size', is_int(cfg.get('block_size')), "must be an integer")
        config = cls(kernel=cfg['kernel'], kernel_kwargs=kwargs, delay=cfg['delay'], normalize=cfg.get('normalize'),
                     max_rows=cfg['max_rows'], block_size=cfg['block_size'], exclude_shared=cfg['exclude_shared'],
                     shuffle=cfg['shuffle'], marginals=cfg['marginals'],
                     estimator_kwargs=tuple((key, cfg[key]) for key in estimator_keys() if key in cfg))
        try:  # the loss and its estimator own the checks of their options
            MMDLoss.from_config(config)
        except OptionError as exc:
            require(False, f'{prefix}.{exc.key}', cfg.get(exc.key, exc.value), str(exc))
        return config


@dataclasses.dataclass(frozen=True)
class MMDConfig:
    """The whole `mmd` block: the loss's keys (`loss`) and the solver's.

    num_batches: batches of a macro-batch (exact estimator), or the bank's capacity plus one.
    valid_batches: batches pooled into the valid stage's no-grad estimate (0: none).
    checkpoint_encoder: gradient checkpointing of the encoder in the macro-batch re-encode.
    estimator: 'exact' (the macro-batch, Algorithm 1) or 'bank' (`MMDBank`); composes with the loss's estimator.
    scope: 'rank' (each rank's rows) or 'global' (one estimate over every rank's rows, `scope`).
    streams: the stream kind (`losses.streams`), one of the quantizer's.
    """
    loss: MMDLossConfig
    num_batches: int
    valid_batches: int
    checkpoint_encoder: bool
    estimator: str
    scope: str
    streams: str

    SOLVER_KEYS: tp.ClassVar[tp.Tuple[str, ...]] = ('num_batches', 'valid_batches', 'checkpoint_encoder',
                                                    'estimator', 'scope', 'streams')
    ROW_SOURCES: tp.ClassVar[tp.Tuple[str, ...]] = ('exact', 'bank')  # the values of `mmd.estimator`
    SCOPES: tp.ClassVar[tp.Tuple[str, ...]] = ('rank', 'global')

    @classmethod
    def parse(cls, block: tp.Mapping[str, tp.Any], prefix: str = 'mmd') -> 'MMDConfig':
        """Checks every key of an `mmd` block; a `ConfigError` names the bad key."""
        cfg = with_added_keys(block)
        check = _checker(cfg, prefix)
        known = set(cls.SOLVER_KEYS) | set(MMDLossConfig.keys())
        unknown = sorted(set(cfg) - known)
        require(not unknown, prefix, unknown, f"unknown key(s); known keys: {sorted(known)}")
        check('num_batches', is_int(cfg.get('num_batches')) and cfg['num_batches'] >= 1, "must be an integer >= 1")
        loss = MMDLossConfig.parse(cfg, prefix)
        check('streams', cfg.get('streams') is not None, "must be set (its kinds depend on the quantizer, checked "
              "with the model's config: `check_streams`)")
        check('valid_batches', is_int(cfg.get('valid_batches')) and cfg['valid_batches'] >= 0,
              "must be an integer >= 0")
        check('checkpoint_encoder', isinstance(cfg.get('checkpoint_encoder'), bool), "must be true or false")
        check('estimator', cfg.get('estimator') in cls.ROW_SOURCES, f"must be one of {cls.ROW_SOURCES}")
        check('scope', cfg.get('scope') in cls.SCOPES, f"must be one of {cls.SCOPES}")
        estimator = estimator_class(loss.marginals, loss.shuffle)
        if cfg['scope'] == 'global':
            for key, value in scope_conflicts(estimator, loss.normalize).items():
                require(False, f'{prefix}.{key}', value, f"must be none with mmd.marginals={loss.marginals} and "
                        f"mmd.scope=global (the estimator's sums cross the ranks, not the rows)")
        if cfg['estimator'] == 'bank':
            for key, value in bank_conflicts(estimator, loss.normalize, loss.max_rows, loss.exclude_shared).items():
                require(False, f'{prefix}.{key}', value, f"is not supported with mmd.estimator=bank "
                        f"({bank_requirements(estimator)})")
        return cls(loss=loss, num_batches=cfg['num_batches'], valid_batches=cfg['valid_batches'],
                   checkpoint_encoder=cfg['checkpoint_encoder'], estimator=cfg['estimator'], scope=cfg['scope'],
                   streams=cfg['streams'])


def check_streams(block: tp.Optional[tp.Mapping[str, tp.Any]], quantizer: str,
                  stream_kinds: tp.Callable[[str], tp.Sequence[str]]) -> None:
    """`mmd.streams`, if set, is one of the stream kinds of the quantizer in use (`models.builders` knows them,
    `stream_kinds(quantizer)`, asked only then: it may import the quantizer's module)."""
    streams = (block or {}).get('streams')
    if streams is not None:
        kinds = tuple(stream_kinds(quantizer))
        require(streams in kinds, 'mmd.streams', streams, f"must be one of {kinds} with the {quantizer} quantizer")


def check_cadence(block: tp.Optional[tp.Mapping[str, tp.Any]], every_updates: int) -> None:
    """`checkpoint.every_updates` is a multiple of `mmd.num_batches`: a macro-batch is not split over a checkpoint."""
    macro = (block or {}).get('num_batches', 1)
    require(every_updates % macro == 0, 'checkpoint.every_updates', every_updates,
            f"a multiple of mmd.num_batches={macro}: a macro-batch cannot be split over a checkpoint")


def _number(value: tp.Any) -> tp.Any:
    """Config numbers as floats, lists as tuples of floats (kernel arguments); anything else as is."""
    if isinstance(value, (list, tuple, omegaconf.ListConfig)):
        return tuple(float(v) for v in value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
