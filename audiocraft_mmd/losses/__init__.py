# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""Losses of audiocraft-mmd: the MMD independence loss (`mmd.MMDLoss`: align, scope, normalize, subsample, then
one of the `estimators`), the memory bank that composes with them (`mmd_bank`), the owner of the `mmd` config
block (`mmd_config.MMDConfig`), how rows cross ranks (`scope`), the kernels (`kernels`) and the per-codebook
streams the loss compares (`streams`)."""
# flake8: noqa
from .estimators import ESTIMATORS, SHUFFLES, MMDEstimator
from .estimators.blocked import GradientInForward, cross_sum, gradient_in_forward, mmd2_unbiased, shared_pairs, within_sum
from .estimators.closed_form import closed_form_mmd2
from .estimators.conditional import NO_PAST, past_strata, shuffle_rows, shuffleable, stratified_index, stratified_mmd2
from .estimators.shuffle import shuffle_codebooks, take_codebooks
from .kernels import KERNELS, Kernel, Linear, MultiScaleGaussian, Quadratic, SquaredInverse, build_kernel
from .mmd import NORMALIZATIONS, MMDLoss, apply_delay, normalize_rows
from .mmd_bank import BankResult, MMDBank
from .mmd_config import ADDED_KEYS, PAPER_WEIGHT, MMDConfig, MMDLossConfig
from .streams import RVQ_STREAM_KINDS, codebook_layers, codebook_streams, rvq_streams, stream_kinds
