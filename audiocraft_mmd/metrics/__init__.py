"""Codebook-independence metrics: pairwise total correlation (the paper's protocol), per-codebook
mutual information with the other codebooks (Appendix E), their delay-aligned variants, and a
streaming `torchmetrics` metric with `measure(model, segments, metric)` (`codebook_independence`).
See `information` for the estimators and their limits (bias), `joint_states` for the exact sparse
counting behind them, `independence_cli` for the command line, `factorization_gap` for the LM-side
measure, `conditional_information` for the total correlation given the past (what `mmd.shuffle: conditional`
lowers).
"""
# flake8: noqa
from .information import (
    codebook_mutual_information,
    delay_align,
    pairwise_total_correlation,
    total_correlation,
)
from .codebook_independence import CodebookIndependence, measure
from .conditional_information import conditional_total_correlation
