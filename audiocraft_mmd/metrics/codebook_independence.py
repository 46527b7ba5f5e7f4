"""The codebook-independence (TC) metric: `CodebookIndependence`, a streaming (and distributed)
torchmetrics metric, and `measure`, which encodes audio with a codec and feeds the metric (used by
the solver's evaluate stage, the `independence_cli` command line and `make reproduce`).

The metric accumulates an exact *sparse* histogram of the joint states ``(c_0, ..., c_{K-1})``
of all codebooks, and derives every statistic from it at `compute` time: the pairwise
histograms of any couple (the paper's protocol and the full matrix), the marginals and the
per-codebook mutual information with all the other codebooks. One exact table costs
O(number of distinct joint states) <= O(frames) memory, 16 bytes per distinct state for
K log2 M <= 62 bits (e.g. 4 MB for 250k frames), where dense pairwise histograms would cost
O(couples x M^2) (32 MB per couple at M = 2048) and still could not give ``I(C_k; C_{-k})``.

States and reductions across ranks:

- ``hist``: [K, M] int64 marginal counts of the plain frames, ``dist_reduce_fx="sum"``;
- ``n_frames`` / ``n_frames_delay``: int64 scalars, ``"sum"``;
- ``keys`` / ``counts`` (and ``keys_delay`` / ``counts_delay``): lists of ``[n, W]`` packed
  joint states and ``[n]`` counts chunks, ``dist_reduce_fx="cat"``. The chunks are compacted
  (duplicates summed) whenever the pending rows outnumber the compacted ones, so the update cost is
  amortized O(N log N); after a gather across ranks, `compute` re-aggregates the concatenation,
  which makes the cat-reduction equivalent to a sum of sparse histograms.

See `audiocraft_mmd.metrics.information` for what the numbers can and cannot show (bias!).
"""

import math
import typing as tp

import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from . import information as info


class CodebookIndependence(Metric):
    """Dependence between the codebooks of a multi-codebook tokenizer, accumulated over batches.

    Usage::

        metric = CodebookIndependence(model.num_codebooks, model.cardinality).to(device)
        for batch in loader:
            codes, _ = model.encode(batch)  # [B, K, T]
            metric.update(codes)
        stats = metric.compute()  # flat dict of floats, reduced across ranks

    Args:
        num_codebooks (int): K (>= 2).
        cardinality (int): Codebook size M.
        num_pairs (int): Number of random couples of the paper's protocol.
        seed (int): Seed of the draw of the couples (fixed at construction, identical on all ranks).
        delay (bool): Also accumulate the delay-aligned frames (MusicGen delay pattern, applied
            within each item of each batch; see `information.delay_align`).
        **kwargs: forwarded to `torchmetrics.Metric` (e.g. ``compute_on_cpu=True`` to keep the
            sparse tables on CPU).
    """
    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(self, num_codebooks: int, cardinality: int, num_pairs: int = 5, seed: int = 0,
                 delay: bool = True, **kwargs: tp.Any):
        super().__init__(**kwargs)
        if num_codebooks < 2:
            raise ValueError(f"at least 2 codebooks are needed, got num_codebooks={num_codebooks}")
        self.num_codebooks = num_codebooks
        self.cardinality = cardinality
        self.delay = delay
        self.pairs = info.sample_pairs(num_codebooks, num_pairs, seed)
        self.num_words = info.num_key_words(num_codebooks, cardinality)
        self.add_state('hist', default=torch.zeros(num_codebooks, cardinality, dtype=torch.long),
                       dist_reduce_fx='sum')
        for suffix in self._variants():
            self.add_state('n_frames' + suffix, default=torch.zeros((), dtype=torch.long), dist_reduce_fx='sum')
            self.add_state('keys' + suffix, default=[], dist_reduce_fx='cat')
            self.add_state('counts' + suffix, default=[], dist_reduce_fx='cat')

    def _variants(self) -> tp.List[str]:
        return ['', '_delay'] if self.delay else ['']

    def update(self, codes: torch.Tensor) -> None:  # type: ignore[override]
        """Accumulate a batch of codes.

        Args:
            codes (torch.Tensor): [B, K, T] integer codes in ``[0, cardinality)``, on any device
                (moved to the metric's device).
        """
        info.validate_codes(codes, self.cardinality)
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"expected {self.num_codebooks} codebooks, got codes of shape {tuple(codes.shape)}")
        codes = codes.to(self.hist.device).long()
        frames = info.codes_to_frames(codes)
        self.hist += torch.stack([torch.bincount(row, minlength=self.cardinality) for row in frames])
        self._accumulate('', frames)
        if self.delay:
            self._accumulate('_delay', info.codes_to_frames(info.delay_align(codes)))

    def _accumulate(self, suffix: str, frames: torch.Tensor) -> None:
        if frames.shape[1] == 0:
            return
        keys, counts = info.count_joint_states(frames, self.cardinality)
        keys_list: tp.List[torch.Tensor] = getattr(self, 'keys' + suffix)
        counts_list: tp.List[torch.Tensor] = getattr(self, 'counts' + suffix)
        keys_list.append(keys)
        counts_list.append(counts)
        setattr(self, 'n_frames' + suffix, getattr(self, 'n_frames' + suffix) + int(counts.sum()))
        # Compact when the pending chunks outnumber the compacted table (doubling rule):
        # each row is re-sorted O(log N) times in total instead of once per update.
        pending = sum(chunk.shape[0] for chunk in keys_list[1:])
        if len(keys_list) > 1 and pending >= keys_list[0].shape[0]:
            # `compute_on_cpu=True` moves the older chunks to CPU after each update: merge on one device.
            device = keys.device
            merged_keys, merged_counts = info.aggregate_counts(torch.cat([c.to(device) for c in keys_list]),
                                                               torch.cat([c.to(device) for c in counts_list]))
            keys_list[:] = [merged_keys]
            counts_list[:] = [merged_counts]

    def _sync_dist(self, dist_sync_fn: tp.Optional[tp.Callable] = None, process_group: tp.Any = None) -> None:
        # A rank that saw no frame has empty list states; torchmetrics would then gather an empty
        # *float 1-D* placeholder against int64 [n, W] tensors of the other ranks. Give it a
        # correctly typed and shaped empty chunk instead.
        for suffix in self._variants():
            if not getattr(self, 'keys' + suffix):
                getattr(self, 'keys' + suffix).append(
                    torch.zeros(0, self.num_words, dtype=torch.long, device=self.hist.device))
                getattr(self, 'counts' + suffix).append(torch.zeros(0, dtype=torch.long, device=self.hist.device))
        kwargs = {'process_group': process_group}
        if dist_sync_fn is not None:
            kwargs['dist_sync_fn'] = dist_sync_fn
        super()._sync_dist(**kwargs)

    def joint_states(self, delay: bool = False) -> info.JointStates:
        """The accumulated sparse joint-state histogram (re-aggregated: chunks may come from several ranks)."""
        suffix = '_delay' if delay else ''
        if delay and not self.delay:
            raise ValueError("this metric was built with delay=False")
        keys, counts = getattr(self, 'keys' + suffix), getattr(self, 'counts' + suffix)
        if isinstance(keys, list) and not keys:
            keys = torch.zeros(0, self.num_words, dtype=torch.long, device=self.hist.device)
            counts = torch.zeros(0, dtype=torch.long, device=self.hist.device)
        else:
            keys, counts = dim_zero_cat(keys), dim_zero_cat(counts)
        keys = keys.reshape(-1, self.num_words)
        keys, counts = info.aggregate_counts(keys, counts)
        return info.JointStates(keys, counts, self.num_codebooks, self.cardinality)

    def compute(self) -> tp.Dict[str, float]:
        """Flat dict of floats.

        Keys: ``n_frames``; ``tc`` / ``tc_std`` / ``tc_mm`` / ``tc_mm_std`` (paper protocol, percent,
        plug-in and Miller-Madow); ``mi_{k}`` / ``mi_mm_{k}`` (nats, ``I(C_k; C_{-k})``);
        ``entropy_{k}``, ``perplexity_{k}``, ``usage_{k}``; with ``delay=True`` also ``n_frames_delay``,
        ``tc_delay``, ``tc_delay_std``, ``tc_delay_mm``, ``tc_delay_mm_std``, ``mi_delay_{k}``,
        ``mi_delay_mm_{k}``. Values are NaN when no frame was seen.
        """
        out: tp.Dict[str, float] = {}
        hist = self.hist.double()
        n = float(hist[0].sum())
        for k in range(self.num_codebooks):
            h_k, _ = info.entropy_from_counts(hist[k])
            out[f'entropy_{k}'] = h_k
            out[f'perplexity_{k}'] = math.exp(h_k) if n > 0 else math.nan
            out[f'usage_{k}'] = float((hist[k] > 0).sum()) / self.cardinality if n > 0 else math.nan
        for suffix in self._variants():
            states = self.joint_states(delay=bool(suffix))
            out['n_frames' + suffix] = float(states.n_frames)
            if states.n_frames == 0:
                summary = {'mean': math.nan, 'std': math.nan, 'mean_mm': math.nan, 'std_mm': math.nan}
                mi = mi_mm = [math.nan] * self.num_codebooks
            else:
                summary = info.tc_summary(states, self.pairs)
                stats = info.codebook_statistics(states)
                mi, mi_mm = stats['mi'].tolist(), stats['mi_mm'].tolist()
            out['tc' + suffix] = summary['mean']
            out['tc' + suffix + '_std'] = summary['std']
            out['tc' + suffix + '_mm'] = summary['mean_mm']
            out['tc' + suffix + '_mm_std'] = summary['std_mm']
            for k in range(self.num_codebooks):
                out[f'mi{suffix}_{k}'] = mi[k]
                out[f'mi{suffix}_mm_{k}'] = mi_mm[k]
        return out

    def report(self) -> tp.Dict[str, tp.Any]:
        """Nested JSON-friendly report (matrices, per-couple values, per-codebook lists) of each variant.

        Unlike `compute`, this does not synchronize across ranks by itself: call it inside
        ``with metric.sync_context():`` in a distributed run.
        """
        out: tp.Dict[str, tp.Any] = {'num_codebooks': self.num_codebooks, 'cardinality': self.cardinality,
                                     'pairs': [list(p) for p in self.pairs]}
        out['plain'] = info.independence_report(self.joint_states(), self.pairs)
        if self.delay:
            out['delay'] = info.independence_report(self.joint_states(delay=True), self.pairs)
        return out


@torch.no_grad()
def measure(model: torch.nn.Module, segments: tp.Iterable[torch.Tensor], metric: CodebookIndependence,
            max_frames: tp.Optional[int] = None) -> int:
    """Encode batches of audio with `model` and accumulate their codes into `metric`.

    Args:
        model: a compression model (`encode(x)` gives codes [B, K, T]).
        segments: batches [B, C, L] of audio, each moved to the metric's device; the iteration
            stops as soon as `max_frames` frames are in (so lazily read audio is not read further).
        metric: the metric to update.
        max_frames: stop after exactly this many frames: whole items first, then a prefix of one item.
    Returns:
        int: the number of frames accumulated.
    """
    n_frames = 0
    for batch in segments:
        codes, _ = model.encode(batch.to(metric.hist.device))
        B, _, T = codes.shape
        if T == 0:
            continue
        if max_frames is not None and n_frames + B * T > max_frames:
            full, rest = divmod(max_frames - n_frames, T)
            if full:
                metric.update(codes[:full])
            if rest:
                metric.update(codes[full:full + 1, :, :rest])
            return max_frames
        metric.update(codes)
        n_frames += B * T
        if max_frames is not None and n_frames >= max_frames:
            break
    return n_frames
