# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Losses of audiocraft-mmd: the MMD independence loss and its kernels."""
# flake8: noqa
from .kernels import (
    Kernel,
    Linear,
    MultiScaleGaussian,
    Quadratic,
    SquaredInverse,
    build_kernel,
)
from .mmd import (
    MMDLoss,
    apply_delay,
    mmd2_unbiased,
    normalize_rows,
    shared_pairs,
    shuffle_codebooks,
)
