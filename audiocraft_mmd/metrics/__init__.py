"""Codebook-independence metrics: pairwise total correlation (the paper's protocol), per-codebook
mutual information with the other codebooks (Appendix E), their delay-aligned variants, and a
streaming `torchmetrics` metric. See `information` for the estimators and their limits (bias).
"""
# flake8: noqa
from .information import (
    codebook_mutual_information,
    delay_align,
    pairwise_total_correlation,
    total_correlation,
)
from .codebook_stats import CodebookIndependence
