"""Bias-corrected FAD: FAD-infinity (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and
where to find them"), with bootstrap standard errors.

FAD from N test samples is biased upwards by a term that is, to first order, linear in 1/N. FAD-infinity
computes FAD on random subsets of the test set of several sizes N_i (reference statistics fixed), fits
FAD(N) = FAD_inf + slope / N by least squares, and reports the intercept: the FAD of infinitely many test
samples. Its SE comes from a bootstrap: the test set is resampled with replacement and FAD-infinity
recomputed (`num_bootstrap` times); the SE is the standard deviation of those values.

The reference set's own finite size still biases every score alike (one reference for all sets), so
differences of FAD-infinity between sets are what compare.
"""
import dataclasses
import typing as tp

import torch

from .fad import frechet_audio_distance


def statistics(x: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and sample covariance [D, D] of embeddings x [N, D] (float64)."""
    x = x.double()
    return x.mean(0), torch.cov(x.T)


@dataclasses.dataclass
class FADInfinity:
    fad_inf: float
    se: float
    slope: float
    fad_full: float  # plain FAD on all test samples
    sizes: tp.List[int]
    count: int

    def as_dict(self, prefix: str = 'fad') -> tp.Dict[str, float]:
        return {f'{prefix}_inf': self.fad_inf, f'{prefix}_inf_se': self.se, f'{prefix}_full': self.fad_full,
                f'{prefix}_patches': float(self.count)}


def subset_sizes(count: int, num_points: int = 8, smallest: float = 0.3) -> tp.List[int]:
    """`num_points` sizes linearly spaced from `smallest` x count to count (Chong & Forsyth use 50k/15 steps)."""
    sizes = torch.linspace(smallest * count, count, num_points).round().long().tolist()
    return sorted(set(int(s) for s in sizes if s >= 2))


def fad_infinity_point(ref_stats: tp.Tuple[torch.Tensor, torch.Tensor], test: torch.Tensor,
                       sizes: tp.Sequence[int], generator: torch.Generator) -> tp.Tuple[float, float]:
    """(intercept, slope) of FAD(N) = a + b / N fitted on one random subset of `test` [N, D] per size."""
    xs, ys = [], []
    for n in sizes:
        idx = torch.randperm(len(test), generator=generator)[:n]
        ys.append(frechet_audio_distance(*ref_stats, *statistics(test[idx])))
        xs.append(1. / n)
    design = torch.tensor([[1., x] for x in xs], dtype=torch.float64)
    coef = torch.linalg.lstsq(design, torch.tensor(ys, dtype=torch.float64)[:, None]).solution[:, 0]
    return float(coef[0]), float(coef[1])


def fad_infinity(reference: torch.Tensor, test: torch.Tensor, num_bootstrap: int = 20, num_points: int = 8,
                 seed: int = 0) -> FADInfinity:
    """FAD-infinity of embeddings test [N, D] against reference [M, D], with a bootstrap SE over test samples."""
    if reference.ndim != 2 or test.ndim != 2 or reference.shape[1] != test.shape[1]:
        raise ValueError(f"expected reference [M, D] and test [N, D], got {tuple(reference.shape)}, "
                         f"{tuple(test.shape)}")
    if len(test) < 10:
        raise ValueError(f"test set has {len(test)} embeddings: FAD-infinity needs at least 10")
    g = torch.Generator().manual_seed(seed)
    ref_stats = statistics(reference)
    sizes = subset_sizes(len(test), num_points)
    fad_inf, slope = fad_infinity_point(ref_stats, test, sizes, g)
    boots = []
    for _ in range(num_bootstrap):
        sample = test[torch.randint(len(test), (len(test),), generator=g)]
        boots.append(fad_infinity_point(ref_stats, sample, sizes, g)[0])
    se = float(torch.tensor(boots).std()) if num_bootstrap > 1 else float('nan')
    full = frechet_audio_distance(*ref_stats, *statistics(test))
    return FADInfinity(fad_inf, se, slope, full, sizes, len(test))
