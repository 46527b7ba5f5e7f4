# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""MMD estimators (`MMDEstimator`, `base`): one file each, registered by name in `registry.ESTIMATORS`, on the
blocked eq. (7) engine (`blocked`)."""
# flake8: noqa
from .base import MMDEstimator, OptionError, bank_conflicts, scope_conflicts
from .registry import ESTIMATORS, SHUFFLES, build_estimator, estimator_class, estimator_keys
