"""Per-codebook streams of a quantizer, for the independence loss: `codebook_streams` asks the quantizer.

Our quantizers own their stream kinds and streams (`STREAM_KINDS`, `streams()`, `codebook_layers`: the
product quantizer and DAC's); audiocraft's residual vector quantizer is a library class, so its streams
are `rvq_streams` here, its kinds `RVQ_STREAM_KINDS`. `stream_kinds` gives a quantizer's kinds.

Both RVQ and PVQ streams read audiocraft's RVQ through its public modules (`quantizer.vq.layers[k]`'s
`encode`/`decode`), without calling the layers' training forward, so computing streams never
updates the codebooks' EMA statistics, k-means init or dead-code replacement.

Gradient routing (both options): the codebooks of audiocraft's RVQ are EMA buffers, not
parameters, so the loss only reaches the **encoder** (through the encoder output `emb`).
- `quantized` (paper, Algorithm 1): stream k holds the codeword q_k picked by stage k. Its gradient
  passes straight through to that stage's input r_k = emb - sum_{j<k} q_j (q_j detached, as in
  audiocraft's RVQ), whose Jacobian w.r.t. `emb` is the identity.
- `residual`: stream k holds r_k itself, the input of stage k (what the upstream prototype used);
  same Jacobian, different values: r_0 is the raw embedding, later r_k shrink.

PVQ (`quantization/product.py`, `ProductVectorQuantizer.streams`): stream k is group k's codeword
(`quantized`, straight-through to group k's dimensions of `emb`) or those dimensions themselves
(`residual`: there is no residual, the group's input is the analogue of r_k). Streams are [B, K, D/K, T]:
K streams of D/K dims, where RVQ gives K streams of D dims; the loss flattens a row to K * D/K = D features (see
`MMDLoss`). PVQ-dropout does not change the streams: they are the codes (the LM's tokens), all K,
whatever the decoder was given.

DAC (`models/dac_codec.py`, `DACQuantizer.streams`): `projected` (DAC only: stage k's L2-normalized
low-dimensional entry, [B, K, codebook_dim, T]; the DAC configs' choice), `quantized` (its output-projected
entry, [B, K, D, T]) or `residual`; the loss reaches the encoder only there too. DAC's stages return
other outputs than audiocraft's, so `codebook_layers` gives none for the bank's forward hooks: the bank
recomputes DAC's streams from the encoder output (DAC's forward leaves its codebooks unchanged, so the
codes are the forward's).
"""
import typing as tp

import torch
from torch import nn

RVQ_STREAM_KINDS = ('quantized', 'residual')  # audiocraft's RVQ (our quantizers list theirs in STREAM_KINDS)


def rvq_streams(quantizer: torch.nn.Module, emb: torch.Tensor, kind: str = 'quantized',
                n_q: tp.Optional[int] = None, with_codes: bool = False) -> tp.Any:
    """Streams of an audiocraft `ResidualVectorQuantizer`.

    Args:
        quantizer: audiocraft `ResidualVectorQuantizer` (has `.vq.layers` and `.n_q`).
        emb: encoder output, [B, D, T].
        kind: 'quantized' or 'residual' (see module docstring).
        n_q: number of codebooks (default: the quantizer's active `n_q`).
        with_codes: also return the codes each stage picked (the conditional shuffle's strata).
    Returns:
        streams: [B, K, D, T], and with ``with_codes`` the [B, K, T] long codes.
    """
    if kind not in RVQ_STREAM_KINDS:
        raise ValueError(f"Unknown stream kind {kind!r}; expected one of {RVQ_STREAM_KINDS}")
    if emb.dim() != 3:
        raise ValueError(f"Encoder output must be [B, D, T], got shape {tuple(emb.shape)}")
    layers = quantizer.vq.layers[:n_q or quantizer.n_q]
    residual = emb
    streams, codes = [], []
    for layer in layers:
        codes.append(layer.encode(residual))
        codeword = layer.decode(codes[-1]).detach()
        if kind == 'quantized':
            # straight-through: the value of the codeword, the gradient of the stage input
            streams.append(residual + (codeword - residual).detach())
        else:
            streams.append(residual)
        residual = residual - codeword
    streams = torch.stack(streams, dim=1)
    return (streams, torch.stack(codes, dim=1)) if with_codes else streams


def stream_kinds(quantizer: nn.Module) -> tp.Tuple[str, ...]:
    """The stream kinds `codebook_streams` accepts for this quantizer."""
    return getattr(quantizer, 'STREAM_KINDS', RVQ_STREAM_KINDS)


def codebook_layers(quantizer: nn.Module) -> tp.Sequence[nn.Module]:
    """The per-codebook quantization modules whose forward sees stream k's input: RVQ stages, PVQ groups;
    none for DAC (see the module docstring)."""
    layers = getattr(quantizer, 'codebook_layers', None)
    return quantizer.vq.layers if layers is None else layers


def codebook_streams(quantizer: nn.Module, emb: torch.Tensor, kind: str = 'quantized',
                     n_q: tp.Optional[int] = None, with_codes: bool = False) -> tp.Any:
    """Streams [B, K, D_k, T] of emb [B, D, T] from the quantizer's own `streams()` (PVQ, DAC), or `rvq_streams`
    for audiocraft's RVQ, and with ``with_codes`` their codes [B, K, T]."""
    if hasattr(quantizer, 'streams'):
        return quantizer.streams(emb, kind=kind, n_q=n_q, with_codes=with_codes)
    return rvq_streams(quantizer, emb, kind=kind, n_q=n_q, with_codes=with_codes)
