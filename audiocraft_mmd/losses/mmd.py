# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""MMD independence loss between codebook streams (paper, section 3, eq. (7), Algorithm 1).

The loss compares n "joint" rows (the K codes of one aligned frame, concatenated) with n
"shuffled" rows (each codebook's rows permuted independently, which samples the product
of the marginals) with the unbiased MMD^2 estimator of eq. (7) (:mod:`.estimators.blocked`), or with another
estimator of `estimators.ESTIMATORS`. `MMDLoss.forward` reads top-down: align, scope (how the rows of several ranks
meet), normalize, subsample, estimate. `MMDLoss.from_config` builds it from the `mmd` block's loss keys, parsed
once (`mmd_config.MMDLossConfig`).
"""

import typing as tp

import torch
from torch import nn

from ..delay_pattern import delay_align
from .estimators import OptionError, build_estimator, scope_conflicts
from .estimators.base import Reduce
from .estimators.shuffle import randperm
from .kernels import Kernel, build_kernel
from .scope import TileShare, all_reduce_sum

Gather = tp.Callable[[torch.Tensor], torch.Tensor]
NORMALIZATIONS = ('none', 'codebook', 'dimension')


def apply_delay(z: torch.Tensor) -> torch.Tensor:
    """Delay-aligns streams (see :func:`audiocraft_mmd.delay_pattern.delay_align`), checking their shape.

    Output frame j holds (Z_0^t, Z_1^{t-1}, ..., Z_{K-1}^{t-K+1}) for t = j + K - 1, i.e.
    ``out[:, k, :, j] = z[:, k, :, j + K - 1 - k]``; steps that would hold padding are dropped.

    Args:
        z: [B, K, D, T] codes.
    Returns:
        [B, K, D, T - K + 1] aligned codes.
    """
    if z.dim() != 4:
        raise ValueError(f"apply_delay expects z of shape [B, K, D, T], got {tuple(z.shape)}.")
    K, T = z.shape[1], z.shape[-1]
    if T < K:
        raise ValueError(f"apply_delay needs T >= K frames, got z of shape {tuple(z.shape)} (K={K}, T={T}).")
    return delay_align(z)


def normalize_rows(rows: torch.Tensor, mode: str, eps: float = 1e-8) -> torch.Tensor:
    """Normalizes rows with statistics over the rows (kept in the autograd graph).

    - 'none': unchanged.
    - 'codebook': each codebook is centered and divided by one scalar so that its rows have
      unit mean squared norm (unit total variance); within-codebook geometry is kept.
    - 'dimension': each of the K * D features is standardized (zero mean, unit variance).

    Shuffling rows within a codebook leaves these statistics unchanged, so normalizing before
    or after the shuffle is the same.

    Args:
        rows: [n, K, D].
        mode: one of 'none', 'codebook', 'dimension'.
        eps: added to variances, so that constant codebooks / features stay finite (gradient too).
    Returns:
        [n, K, D].
    """
    if mode == 'none':
        return rows
    centered = rows - rows.mean(0, keepdim=True)
    if mode == 'codebook':
        power = centered.pow(2).sum(-1).mean(0)  # [K]
        return centered * torch.rsqrt(power + eps)[None, :, None]
    if mode == 'dimension':
        return centered * torch.rsqrt(centered.pow(2).mean(0, keepdim=True) + eps)
    raise ValueError(f"Unknown normalization {mode!r}; valid options are: {', '.join(NORMALIZATIONS)}.")


class MMDLoss(nn.Module):
    """Independence loss of Algorithm 1: MMD^2 between joint and codebook-shuffled code rows.

    Steps (:meth:`forward`): align codebooks with the delay pattern (optional) and merge batch and time into
    n = B * T' rows of [K, D]; under the global scope, let the rows cross the ranks as the estimator declares
    (:meth:`cross_ranks`); normalize; subsample (optional); estimate with the estimator that ``marginals`` and
    ``shuffle`` select (`estimators.ESTIMATORS`). The default, Algorithm 1's: shuffle each codebook's rows
    independently, flatten to [n, K * D] and return :func:`mmd2_unbiased` (eq. (7)).

    Normalization (default 'none', the paper's; `docs/results.md` has the `make reproduce` run that
    chose it: 'codebook' collapsed the codes at weight 1e3). The kernel radii only mean something relative to the
    scale of the codes. With 'codebook', each codebook has unit total variance, so
    ||x - y||^2 is about 2K (8 for K = 4) between independent rows and the paper's radii
    {0.1, 1, 5, 10, 20, 50} span from near-duplicate detection to almost-global scale
    around it; every codebook weighs the same whatever the RVQ stage's residual norm (otherwise
    codebook 0 dominates the distances); within-codebook geometry is untouched. 'dimension'
    standardizes each of the K * D features: then ||x - y||^2 is about 2 K D (1024), the radii
    0.1, 1 and 5 give kernels that are ~0 off the diagonal, and low-variance (nearly dead)
    dimensions are amplified as much as informative ones. 'none' ties the radii to whatever
    scale the encoder learns. The statistics stay in the autograd graph (their cost is O(n F)
    against O(n^2 F) for the loss): the normalized loss is then invariant to rescaling the
    codes, so the encoder cannot lower it by inflating or shrinking its latents (with detached
    statistics it could: spreading the codes pushes every off-diagonal Gaussian term to 0).

    Subsampling (``max_rows``): m rows are drawn uniformly without replacement after the
    normalization (statistics use all rows), then shuffled among themselves. Given the
    macro-batch, this is exactly the estimator one would get from a macro-batch of m rows:
    the within-joint term is unbiased for the macro-batch average, the shuffle terms carry the
    same finite-sample effect as the full estimator (pairs x_i, y_j sharing a code, a fraction
    about K / m of the cross pairs instead of K / n), and the variance grows roughly as 1 / m
    (as 1 / m^2 near independence). Cost falls as m^2.

    Shared pairs (``exclude_shared``): eq. (7) treats the shuffled rows as independent of the
    joint rows, but shuffled row y_j reuses, for each codebook k, the code of joint row
    i = perm_k(j). Those about K n cross pairs (x_i, y_j) share a code, so their kernel value is
    larger on average, and even for independent codebooks the expected loss is
    -2 / n^2 * sum over shared pairs of (E[k | shared] - E[k]), about -2 K / n * Delta: a negative
    bias of the same order, 1 / n, as the estimator's standard deviation near independence (measured
    in `docs/results.md`). With
    ``exclude_shared=True`` these pairs are left out of the cross average (divided by the
    n^2 - P remaining pairs; O(n K F) extra work); every remaining pair (x_i, y_j), like every
    within-joint or within-shuffled pair, then consists of distinct cells of the code matrix, so
    under independence the expectation is exactly 0. The default False is the paper's eq. (7).

    Conditional shuffle (``shuffle='conditional'``, issue #19, `estimators.conditional`): each codebook's rows are
    permuted only among rows with the same code of the first codebook in the previous frame, so the
    shuffled rows sample the product of the marginals *given that code*, and the loss is the average over
    strata of eq. (7) within each stratum (`estimators.conditional.stratified_mmd2`: cross pairs that share a cell
    always left out, ``exclude_shared`` or not). It is 0 in expectation when the codebooks are independent
    given the past (what a delay-pattern LM needs), while a global shuffle also penalizes the dependence
    that the past explains. Needs the codes (``forward``'s ``codes``). After the normalization and the
    subsample, rows without a past or in a stratum of fewer than K + 1 rows are left out; with none left
    the loss is 0. Cost: sum_s n_s^2 kernel pairs instead of n^2.

    Closed form (``marginals='closed_form'``, issue #29, :mod:`.estimators.closed_form`): instead of one random
    shuffle, the estimate eq. (7) averages to over all the shuffles' permutations, computed from the per-codebook
    Gram matrices (no permutation noise). Factorizing kernels only (the multi-scale Gaussian) and the global
    shuffle only; ``exclude_shared`` then leaves the diagonal out of the per-codebook row means (0 in
    expectation under independence, as with the shuffle). No shuffle is drawn.

    Random features (``marginals='features'``, :mod:`.estimators.features`): the same closed form estimated from
    ``features`` random frequencies per radius (drawn from ``generator``), in O(n M F). With ``gather`` (global
    scope) the rows are not gathered: the features' sums are all-reduced (`scope.all_reduce_sum`), which
    needs ``normalize='none'`` (the statistics would be per rank) and makes ``max_rows`` per rank.

    Random draws, in order, from ``generator``: the subsample permutation (if any), then one
    permutation per codebook (global), or one [n, K] uniform tensor (conditional).

    Args:
        kernel: kernel name for :func:`build_kernel` or a :class:`Kernel` instance.
        kernel_kwargs: keyword arguments for the kernel (e.g. ``{'sigmas': [1, 5]}``).
        delay: align codebooks with the "delay" pattern (see :func:`apply_delay`); False gives
            the "parallel" variant.
        normalize: 'none' (default, the paper's), 'codebook' or 'dimension', see above.
        max_rows: if set, use at most that many rows (>= 2).
        block_size: tile side for :func:`mmd2_unbiased`.
        eps: variance floor of the normalization.
        exclude_shared: leave the cross pairs that share a code out of the cross term (see above).
        shuffle: 'global' (Algorithm 1) or 'conditional' (within strata of the past, see above).
        marginals: 'shuffle' (Algorithm 1), 'closed_form' or 'features' (see above); with ``shuffle`` it selects
            the estimator (`estimators.estimator_class`).
        features: frequencies per radius with ``marginals='features'``.
        estimator_kwargs: other `config_keys` of the selected estimator.
    """
    def __init__(self, kernel: tp.Union[str, Kernel] = 'gaussian', kernel_kwargs: tp.Optional[dict] = None,
                 delay: bool = True, normalize: str = 'none', max_rows: tp.Optional[int] = None,
                 block_size: int = 1024, eps: float = 1e-8, exclude_shared: bool = False, shuffle: str = 'global',
                 marginals: str = 'shuffle', features: int = 1024, estimator_kwargs: tp.Optional[dict] = None):
        super().__init__()
        if isinstance(kernel, Kernel):
            if kernel_kwargs:
                raise ValueError("kernel_kwargs cannot be used with a Kernel instance.")
            self.kernel = kernel
        else:
            self.kernel = build_kernel(kernel, **(kernel_kwargs or {}))
        if normalize not in NORMALIZATIONS:
            raise OptionError('normalize', normalize, f"Unknown normalization {normalize!r}; valid options are: "
                              f"{', '.join(NORMALIZATIONS)}.")
        if max_rows is not None and max_rows < 2:
            raise OptionError('max_rows', max_rows, f"max_rows must be at least 2 (or None), got {max_rows}.")
        if block_size < 1:
            raise OptionError('block_size', block_size, f"block_size must be positive, got {block_size}.")
        self.estimator = build_estimator(marginals, shuffle, self.kernel, block_size, exclude_shared,
                                         **{'features': features, **(estimator_kwargs or {})})
        self.marginals, self.shuffle, self.features = marginals, shuffle, features
        self.delay = delay
        self.normalize = normalize
        self.max_rows = max_rows
        self.block_size = block_size
        self.eps = eps
        self.exclude_shared = exclude_shared

    @classmethod
    def from_config(cls, config: tp.Any) -> 'MMDLoss':
        """The loss described by the parsed loss keys of an `mmd` block (`mmd_config.MMDLossConfig.parse`)."""
        return cls(kernel=config.kernel, kernel_kwargs=dict(config.kernel_kwargs), delay=config.delay,
                   normalize=config.normalize, max_rows=config.max_rows, block_size=config.block_size,
                   exclude_shared=config.exclude_shared, shuffle=config.shuffle, marginals=config.marginals,
                   estimator_kwargs=dict(config.estimator_kwargs))

    def aligned_rows(self, streams: torch.Tensor) -> torch.Tensor:
        """Validated and aligned rows [n, K, D] from streams [B, K, D, T] (rows batch-major), not normalized."""
        if streams.dim() != 4:
            raise ValueError(f"MMDLoss expects streams of shape [B, K, D, T], got {tuple(streams.shape)}.")
        B, K, D, T = streams.shape
        if K < 2:
            raise ValueError(f"MMDLoss needs at least 2 codebooks, got streams of shape {tuple(streams.shape)}.")
        if not bool(torch.isfinite(streams).all()):
            raise ValueError(f"streams contains NaN or inf values (streams of shape {tuple(streams.shape)}).")
        if self.delay and T < K:
            raise ValueError(f"Delay of K - 1 = {K - 1} frames does not fit in T = {T} frames "
                             f"(streams of shape {tuple(streams.shape)}).")
        if streams.dtype not in (torch.float32, torch.float64):
            streams = streams.float()
        z = apply_delay(streams) if self.delay else streams
        n = B * z.shape[-1]
        if n < 2:
            raise ValueError(f"MMDLoss needs at least 2 rows (B * T' = {n}), got streams of shape "
                             f"{tuple(streams.shape)} (delay={self.delay}).")
        return z.permute(0, 3, 1, 2).reshape(n, K, D)

    def aligned_strata(self, codes: tp.Optional[torch.Tensor]) -> tp.Optional[torch.Tensor]:
        """Strata [n] of the aligned rows from codes [B, K, T], for an estimator that `needs_codes` (e.g. the
        conditional shuffle's, :func:`.estimators.conditional.past_strata`); else None (codes unused)."""
        if not self.estimator.needs_codes:
            return None
        if codes is None:
            raise ValueError(f"shuffle={self.shuffle!r}, marginals={self.marginals!r} needs the codes [B, K, T] of "
                             "the streams (`codes=`).")
        return self.estimator.strata(codes, self.delay)

    def cross_ranks(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], gather: tp.Optional[Gather]
                    ) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor], tp.Optional[Reduce]]:
        """The scope step: (rows, strata, reduce) as the estimator sees them, given the global scope's `gather`
        (None: this rank alone). An estimator that `crosses_ranks` by 'gather' gets every rank's rows and strata;
        one that crosses by 'reduce' keeps this rank's and all-reduces its sums (`reduce`, autograd-aware), so
        that only its sums cross the ranks."""
        if gather is None:
            return rows, strata, None
        for key, value in scope_conflicts(type(self.estimator), self.normalize).items():
            raise OptionError(key, value, f"marginals={self.marginals!r} with global scope needs {key}='none', got "
                              f"{value!r} (the rows are not gathered: statistics would be per rank).")
        if self.estimator.crosses_ranks == 'reduce':
            return rows, strata, all_reduce_sum
        return gather(rows), None if strata is None else gather(strata), None

    def subsample(self, rows: torch.Tensor, strata: tp.Optional[torch.Tensor], generator: tp.Optional[torch.Generator]
                  ) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        """At most `max_rows` of the rows (and their strata), drawn uniformly without replacement."""
        n = rows.shape[0]
        if self.max_rows is None or n <= self.max_rows:
            return rows, strata
        keep = randperm(n, generator, rows.device)[:self.max_rows]
        return rows[keep], None if strata is None else strata[keep]

    def forward(self, streams: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
                gather: tp.Optional[Gather] = None, codes: tp.Optional[torch.Tensor] = None,
                share: tp.Optional[TileShare] = None) -> torch.Tensor:
        """MMD^2 between joint and shuffled rows: align, scope, normalize, subsample, estimate.

        Args:
            streams: [B, K, D, T] quantized codes (K codebooks of dimension D, T frames).
            generator: random generator for the subsample and the estimator's draws.
            gather: the global scope's row gather (:func:`.scope.gather_rows`, `mmd.scope: global`: one estimate
                over every rank's rows, whose statistics then cover all of them), see :meth:`cross_ranks`.
            codes: [B, K, T] integer codes of the streams; needed by estimators that `needs_codes` only.
            share: this rank's share of the tiles (`scope.tile_share`, with ``gather``: every rank holds
                the same rows and draws the same shuffles); estimators that cannot share tiles ignore it.
        Returns:
            Scalar loss.
        """
        rows, strata = self.aligned_rows(streams), self.aligned_strata(codes)
        if strata is not None and strata.shape[0] != rows.shape[0]:
            raise ValueError(f"codes of shape {tuple(codes.shape)} do not match streams of shape "  # type: ignore
                             f"{tuple(streams.shape)}.")
        rows, strata, reduce = self.cross_ranks(rows, strata, gather)
        rows = normalize_rows(rows, self.normalize, self.eps)
        rows, strata = self.subsample(rows, strata, generator)
        return self.estimator(rows, strata, generator, share, reduce)
