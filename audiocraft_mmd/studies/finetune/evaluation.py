"""What a fine-tuning changed, against the codec it started from: `studies.codecs.evaluation`'s protocol (independence,
MMD, reconstruction, liveness, FAD), plus FAD-infinity of the reconstructions, the fraction of tokens that
changed, and how far the parts an encoder-only fine-tuning freezes (decoder, codebooks) moved.
"""
import typing as tp

import torch

from ..codecs.evaluation import EvalProtocol, evaluate_codec, load_codec, reconstruction_fad

FROZEN_PARTS = ('decoder', 'quantizer')  # what encoder-only fine-tuning keeps: the decoder and the codebooks


def frozen_difference(model: torch.nn.Module, reference: torch.nn.Module,
                      parts: tp.Sequence[str] = FROZEN_PARTS) -> float:
    """Largest absolute difference between the `parts` (parameters and buffers) of two codecs; 0 = bit-identical.
    A key one side lacks raises (the codecs must share the architecture)."""
    ours, theirs = model.state_dict(), reference.state_dict()
    keys = [k for k in theirs if k.split('.')[0] in parts]
    missing = [k for k in keys if k not in ours]
    if missing or not keys:
        raise KeyError(f"the codecs differ in architecture: {missing[:3] or 'no ' + '/'.join(parts) + ' keys'}")
    return max(float((ours[k].double() - theirs[k].double()).abs().max()) if ours[k].numel() else 0. for k in keys)


@torch.no_grad()
def token_change(model: torch.nn.Module, reference: torch.nn.Module, segments: torch.Tensor,
                 batch_size: int = 16) -> float:
    """Fraction of the codes [B, K, T] of `segments` [N, C, L] that differ between two codecs."""
    changed, total = 0, 0
    for batch in segments.split(batch_size):
        a, b = model.encode(batch)[0], reference.encode(batch)[0]
        changed += int((a != b).sum())
        total += a.numel()
    return changed / total


class _Recorder:
    """Wraps an embedder, keeping the embeddings of the clips whose name starts with `prefix`."""

    def __init__(self, embedder: tp.Callable[..., tp.Any], prefix: str):
        self.embedder, self.prefix, self.kept = embedder, prefix, []

    def __call__(self, wav: torch.Tensor, sample_rate: int, name: str = '', **kwargs: tp.Any):
        out = self.embedder(wav, sample_rate, name=name, **kwargs)
        if name.startswith(self.prefix):
            self.kept.append(out.embeddings)
        return out


def reconstruction_fad_infinity(model: torch.nn.Module, audio: tp.Any, protocol: EvalProtocol) -> tp.Dict[str, float]:
    """`reconstruction_fad`'s FAD and its FAD-infinity (`music_quality.fad_infinity`, bootstrap SE) from the same
    musicnn embeddings of the reconstructions, against the evaluation files'."""
    from ...music_quality.fad_infinity import fad_infinity
    from ...music_quality.musicnn.embedding import MusicnnEmbedder
    if audio.embedder is None:
        audio.embedder = MusicnnEmbedder(hop_seconds=protocol.fad_hop)
    recorder = _Recorder(audio.embedder, 'reconstruction')
    results = reconstruction_fad(model, audio, protocol, embedder=recorder)
    results.update(fad_infinity(audio.reference_embeddings, torch.cat(recorder.kept)).as_dict('fad_musicnn'))
    return results


def evaluate_finetuned(checkpoint: tp.Any, reference: torch.nn.Module, audio: tp.Any,
                       protocol: EvalProtocol) -> tp.Dict[str, float]:
    """Every number of the rehearsal's tables for the codec of a solver checkpoint (best state), against the
    codec it was fine-tuned from (`reference`)."""
    cfg, model = load_codec(checkpoint)
    return measure(model, cfg, reference, audio, protocol)


def measure(model: torch.nn.Module, cfg: tp.Any, reference: torch.nn.Module, audio: tp.Any,
            protocol: EvalProtocol) -> tp.Dict[str, float]:
    """`evaluate_finetuned` for a loaded codec and its solver config."""
    import dataclasses
    model.eval()
    results = evaluate_codec(model, cfg, audio, dataclasses.replace(protocol, fad=False))
    if protocol.fad:
        results.update(reconstruction_fad_infinity(model, audio, protocol))
    results['token_change'] = token_change(model, reference, audio.segments, protocol.batch_size)
    results['frozen_max_abs_diff'] = frozen_difference(model, reference)
    return results
