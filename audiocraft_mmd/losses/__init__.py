# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Losses of audiocraft-mmd: the MMD independence loss (`mmd.MMDLoss`, built from the `mmd` config
block by `MMDLoss.from_config`), its blocked estimator (`mmd_estimator`), the memory-bank
estimator (`mmd_bank`, `mmd.estimator: bank`), the shuffle-free closed form (`mmd_closed_form`), its kernels (`kernels`) and the per-codebook streams it compares (`streams`)."""
# flake8: noqa
from .kernels import (
    KERNELS,
    Kernel,
    Linear,
    MultiScaleGaussian,
    Quadratic,
    SquaredInverse,
    build_kernel,
)
from .mmd import (
    NORMALIZATIONS,
    MMDLoss,
    apply_delay,
    normalize_rows,
    shared_pairs,
    shuffle_codebooks,
    shuffle_rows,
    take_codebooks,
)
from .mmd_bank import BankResult, MMDBank
from .mmd_closed_form import closed_form_mmd2
from .mmd_config import ADDED_KEYS, MMDLossConfig
from .mmd_estimator import GradientInForward, cross_sum, gradient_in_forward, mmd2_unbiased, within_sum
from .strata import NO_PAST, SHUFFLES, past_strata, shuffleable, stratified_index, stratified_mmd2
from .streams import RVQ_STREAM_KINDS, codebook_layers, codebook_streams, rvq_streams, stream_kinds
