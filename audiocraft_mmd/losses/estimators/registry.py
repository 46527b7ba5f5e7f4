# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""The MMD estimators by name, and the lookup from the `mmd` keys that select one (`marginals`, `shuffle`).

A new estimator is one `MMDEstimator` subclass and one entry here (or `ESTIMATORS[name] = cls` from its own
module): the config's parser, `MMDLoss` and `MMDBank` read everything else from its attributes. The lookups read
the dict when called, so an entry added later is seen.
"""
import typing as tp

from ..kernels import Kernel
from .base import MMDEstimator, OptionError
from .closed_form import ClosedForm
from .conditional import Conditional
from .features import RandomFeatures
from .shuffle import Shuffle

ESTIMATORS: tp.Dict[str, tp.Type[MMDEstimator]] = {
    'shuffle': Shuffle,
    'conditional': Conditional,
    'closed_form': ClosedForm,
    'features': RandomFeatures,
}


def _values(attribute: str) -> tp.Tuple[str, ...]:
    return tuple(dict.fromkeys(getattr(cls, attribute) for cls in ESTIMATORS.values()))


def estimator_keys() -> tp.Tuple[str, ...]:
    """The `mmd` keys that some estimator reads (its `config_keys`)."""
    return tuple(dict.fromkeys(key for cls in ESTIMATORS.values() for key in cls.config_keys))


def estimator_class(marginals: str, shuffle: str) -> tp.Type[MMDEstimator]:
    """The estimator that `mmd.marginals` and `mmd.shuffle` select; an `OptionError` names the key that selects
    none."""
    for key, value in (('marginals', marginals), ('shuffle', shuffle)):
        if value not in _values(key):
            raise OptionError(key, value, f"Unknown {key} {value!r}; valid options are: {', '.join(_values(key))}.")
    for cls in ESTIMATORS.values():
        if (cls.marginals, cls.shuffle) == (marginals, shuffle):
            return cls
    pairs = ', '.join(f'{cls.marginals}/{cls.shuffle}' for cls in ESTIMATORS.values())
    raise OptionError('shuffle', shuffle, f"No estimator takes marginals={marginals!r} with shuffle={shuffle!r} "
                      f"(marginals/shuffle of the estimators: {pairs}).")


def build_estimator(marginals: str, shuffle: str, kernel: Kernel, block_size: int, exclude_shared: bool,
                    **options: tp.Any) -> MMDEstimator:
    """The selected estimator, given those of `options` that are among its `config_keys` (the others are unused)."""
    cls = estimator_class(marginals, shuffle)
    return cls(kernel, block_size, exclude_shared, **{key: options[key] for key in cls.config_keys if key in options})


# The shuffles of the built-in estimators (what the loss's checks accept is read from ESTIMATORS when called).
SHUFFLES = _values('shuffle')
