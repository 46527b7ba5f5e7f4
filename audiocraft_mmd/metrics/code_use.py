"""Does the decoder use its codes? The zero-embedding test, and the liveness rule built on it.

A codec is *live* when its decoder uses its codes. Three measurements say so, none of them about quality:

- `cross_corr` (`metrics.liveness`): outputs of different inputs are different sounds (a decoder that ignores
  its codes outputs one sound for every input: correlation near 1);
- `min_usage` (`metrics.liveness`): every codebook uses a share of its codes (a codebook stuck on one code
  carries nothing);
- `zero_code_change` (here): how much the output moves when the decoder gets a zero embedding instead of the
  codes' embedding, `rms(decoder(q) - decoder(0)) / rms(decoder(q))` per clip. A decoder that ignores its input
  gives 0; a linear decoder without bias gives exactly 1 (its output at 0 is 0).

Quality is a separate question, read against the no-quantizer ceiling and the calibration table of
`docs/codec_collapse.md` (the old rule `log-mel correlation >= 0.9` asked for a codec as clean as 28 dB of white
noise, above the CPU architecture's no-quantizer ceiling: it called every CPU codec "not live").
"""
import typing as tp

import torch

LIVE_CROSS_CORR = 0.3  # correlation between outputs of different inputs, below
LIVE_MIN_USAGE = 0.25  # every codebook's perplexity, as a fraction of its bins, at least
# Half-way between a decoder that ignores its codes (0) and a linear decoder without bias (1).
LIVE_ZERO_CODE_CHANGE = 0.5


@torch.no_grad()
def zero_code_change(model: tp.Any, codes: torch.Tensor) -> torch.Tensor:
    """rms(decoder(q) - decoder(0)) / rms(decoder(q)) per clip [B] of codes [B, K, T] of an audiocraft
    `EncodecModel` (q = the codes' embedding, 0 = a zero embedding of the same shape)."""
    emb = model.decode_latent(codes)
    out = model.decoder(emb)
    zero = model.decoder(torch.zeros_like(emb))
    rms = out.flatten(1).pow(2).mean(-1).sqrt().clamp_min(1e-12)
    return (out - zero).flatten(1).pow(2).mean(-1).sqrt() / rms


def live_flags(metrics: tp.Mapping[str, float]) -> tp.Dict[str, float]:
    """Each liveness criterion as 1. (met) or 0., and `live` = all of them. `zero_code_change` counts when it was
    measured (records older than the test lack it). Empty when output/output correlation or usage is missing."""
    if not all(k in metrics for k in ('cross_corr', 'min_usage')):
        return {}
    flags = {'live_cross': float(metrics['cross_corr'] < LIVE_CROSS_CORR),
             'live_usage': float(metrics['min_usage'] >= LIVE_MIN_USAGE)}
    if 'zero_code_change' in metrics:
        flags['live_zero'] = float(metrics['zero_code_change'] >= LIVE_ZERO_CODE_CHANGE)
    return {**flags, 'live': float(all(flags.values()))}


def with_live(metrics: tp.Mapping[str, float]) -> tp.Dict[str, float]:
    """`metrics` with its liveness flags (`live_flags`) added."""
    return {**metrics, **live_flags(metrics)}


def rule_text() -> str:
    """The liveness rule in words, for reports."""
    return (f"live: the decoder uses its codes, all of cross_corr < {LIVE_CROSS_CORR} (outputs of different inputs), "
            f"min_usage >= {LIVE_MIN_USAGE}, zero_code_change >= {LIVE_ZERO_CODE_CHANGE} (output moved by a zero "
            "embedding, when measured); quality is read against docs/codec_collapse.md's no-quantizer ceiling and "
            "calibration table")
