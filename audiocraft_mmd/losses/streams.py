"""Per-codebook streams of audiocraft's residual vector quantizer, for the independence loss.

Both options read audiocraft's RVQ through its public modules (`quantizer.vq.layers[k]`'s
`encode`/`decode`), without calling the layers' training forward, so computing streams never
updates the codebooks' EMA statistics, k-means init or dead-code replacement.

Gradient routing (both options): the codebooks of audiocraft's RVQ are EMA buffers, not
parameters, so the loss only reaches the **encoder** (through the encoder output `emb`).
- `quantized` (paper, Algorithm 1): stream k holds the codeword q_k picked by stage k. Its gradient
  passes straight through to that stage's input r_k = emb - sum_{j<k} q_j (q_j detached, as in
  audiocraft's RVQ), whose Jacobian w.r.t. `emb` is the identity.
- `residual`: stream k holds r_k itself, the input of stage k (what the upstream prototype used);
  same Jacobian, different values: r_0 is the raw embedding, later r_k shrink.
"""
import typing as tp

import torch

STREAM_KINDS = ('quantized', 'residual')


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
    if kind not in STREAM_KINDS:
        raise ValueError(f"Unknown stream kind {kind!r}; expected one of {STREAM_KINDS}")
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
