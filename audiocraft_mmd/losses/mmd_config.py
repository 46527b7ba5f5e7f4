# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""The loss keys of the `mmd` config block, parsed and checked once into a frozen `MMDLossConfig`.

The block also holds the solver's keys (`solvers.compression_mmd.MMDSolverConfig` parses those, and calls
:meth:`MMDLossConfig.parse` for the rest). Keys added after XPs were trained get, when absent, the value that
does what those XPs did: `ADDED_KEYS` is the one table of them, for the whole block (the reproduce harness
reads it too, to tell an added key from a drift).
"""
import dataclasses
import typing as tp

import omegaconf

from ..config_validation import ConfigError, is_int, require
from .kernels import KERNELS, build_kernel

NORMALIZATIONS = ('none', 'codebook', 'dimension')
SHUFFLES = ('global', 'conditional')
# How the product of the marginals enters the estimate (`MMDLoss`, issue #29).
MARGINALS = ('shuffle', 'closed_form', 'features')

# Keys of the `mmd` block added after XPs were trained -> the value those XPs trained with.
ADDED_KEYS: tp.Dict[str, tp.Any] = {'estimator': 'exact', 'scope': 'rank', 'shuffle': 'global', 'marginals': 'shuffle',
                                    'features': 1024}


def with_added_keys(block: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """The block as a plain dict, with every absent `ADDED_KEYS` key filled in."""
    plain = omegaconf.OmegaConf.to_container(block, resolve=True) if isinstance(block, omegaconf.DictConfig) \
        else dict(block)
    return {**ADDED_KEYS, **plain}  # type: ignore[arg-type]


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
    features: int = 1024

    # Keys of the `mmd` block this config reads (the kernel's arguments among them).
    KEYS: tp.ClassVar[tp.Tuple[str, ...]] = ('kernel', 'sigmas', 'sigma', 'delay', 'normalize', 'max_rows',
                                             'block_size', 'exclude_shared', 'shuffle', 'marginals', 'features')

    @classmethod
    def parse(cls, block: tp.Mapping[str, tp.Any], prefix: str = 'mmd') -> 'MMDLossConfig':
        """Checks the loss keys of an `mmd` block (other keys are ignored); a `ConfigError` names the bad key."""
        cfg = with_added_keys(block)

        def check(key: str, ok: bool, why: str) -> None:
            require(ok, f'{prefix}.{key}', cfg.get(key), why)

        check('kernel', cfg.get('kernel') in KERNELS, f"must be one of {tuple(KERNELS)}")
        kernel_cls = KERNELS[cfg['kernel']]
        kwargs = tuple((key, _number(cfg.get(key))) for key in kernel_cls.config_keys)
        try:  # the kernel's constructor owns the checks of its arguments
            build_kernel(cfg['kernel'], **dict(kwargs))
        except (TypeError, ValueError) as exc:
            keys = ', '.join(f'{prefix}.{k}' for k in kernel_cls.config_keys)
            raise ConfigError(f"Invalid config `{keys}` for kernel {cfg['kernel']!r}: {exc}") from exc
        check('normalize', cfg.get('normalize') in NORMALIZATIONS, f"must be one of {NORMALIZATIONS}")
        check('shuffle', cfg.get('shuffle') in SHUFFLES, f"must be one of {SHUFFLES}")
        check('marginals', cfg.get('marginals') in MARGINALS, f"must be one of {MARGINALS}")
        if cfg['marginals'] != 'shuffle':
            kernel = build_kernel(cfg['kernel'], **dict(kwargs))
            check('kernel', kernel.factorizes, f"has no closed form with mmd.marginals={cfg['marginals']}: "
                  f"{kernel.why_not_factorized}")
            check('shuffle', cfg['shuffle'] == 'global', f"has no closed form with mmd.marginals={cfg['marginals']} "
                  "(per stratum it would cost one pass per stratum, strata hold tens of rows: not built)")
        for key in ('delay', 'exclude_shared'):
            check(key, isinstance(cfg.get(key), bool), "must be true or false")
        check('features', is_int(cfg.get('features')) and cfg['features'] >= 1, "must be an integer >= 1")
        max_rows, block_size = cfg.get('max_rows'), cfg.get('block_size')
        check('max_rows', max_rows is None or (is_int(max_rows) and max_rows >= 2), "must be null or an integer >= 2")
        check('block_size', is_int(block_size) and block_size >= 1, "must be an integer >= 1")
        return cls(kernel=cfg['kernel'], kernel_kwargs=kwargs, delay=cfg['delay'], normalize=cfg['normalize'],
                   max_rows=max_rows, block_size=block_size, exclude_shared=cfg['exclude_shared'],
                   shuffle=cfg['shuffle'], marginals=cfg['marginals'], features=cfg['features'])


def _number(value: tp.Any) -> tp.Any:
    """Config numbers as floats, lists as tuples of floats (kernel arguments); anything else as is."""
    if isinstance(value, (list, tuple, omegaconf.ListConfig)):
        return tuple(float(v) for v in value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
