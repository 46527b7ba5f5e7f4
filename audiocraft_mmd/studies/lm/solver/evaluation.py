"""Evaluate the LMs and codecs of the study with one protocol, so that every number compares.

Per LM (an XP folder): held-out cross-entropy per codebook and per frame (nats; the same segments of
the held-out split for every LM, `metrics.factorization_gap.cross_entropy_on_manifest`); generation
of `num_clips` clips of `clip_seconds` conditioned on the held-out files' metadata with CFG 3 and
sampling at temperature 1, timed (wall seconds per second of audio, tokens and decoding) with its
LM forward passes counted (per frame of audio); FAD and tag KL of the clips (`quality`).
Per codec: unigram entropy of its tokens on the held-out split (the cross-entropy of an LM that
ignores all context: per codebook and per frame, nats), FAD/KL of its reconstructions of the floor clips.
Real data: FAD/KL of training-split crops (the floor).
"""
import contextlib
import dataclasses
import time
import typing as tp

import torch

from ....environment import repo_relative

EVAL_VERSION = 1  # bump when the protocol changes: cached results are then recomputed


@dataclasses.dataclass(frozen=True)
class LMProtocol:
    heldout: str  # evaluate split: cross-entropy, unigram entropy, FAD/KL reference, conditioning
    floor: str  # training split: real-data floor and codec reconstructions
    ce_segments: int = 64
    batch_size: int = 8
    num_clips: int = 256
    clip_seconds: float = 3.0
    gen_batch_size: int = 64
    cfg_coef: float = 3.0
    hop_seconds: float = 1.0
    musicnn: str = 'MSD_musicnn'
    music_metrics: bool = True
    seed: int = 0
    # Flatten LMs take ~K x the autoregressive steps: generating `num_clips` for FAD costs ~15 min each on
    # 2 cores. With `flatten_clips` set, flatten LMs generate that many clips, for the clip statistics
    # only (no FAD / tag KL: they would not compare at another clip count).
    flatten_clips: tp.Optional[int] = None
    timing_clips: int = 16  # generation speed: one batch of this many clips, the same for every LM

    def key(self) -> dict:
        """What a cached evaluation must match; data paths repository-relative, so that a clone or git worktree
        of the same repository reuses the evaluations of another (the data folder is the same, linked or copied)."""
        return {'version': EVAL_VERSION, **dataclasses.asdict(self),
                'heldout': repo_relative(self.heldout), 'floor': repo_relative(self.floor)}

    def reference_key(self) -> dict:
        """The key of the codec and real-data evaluations, which the LM-only fields do not change."""
        key = self.key()
        for field in LM_ONLY_FIELDS:
            key.pop(field)
        return key


LM_ONLY_FIELDS = ('flatten_clips', 'timing_clips')


@contextlib.contextmanager
def counting_forward_passes(module: torch.nn.Module) -> tp.Iterator[tp.List[int]]:
    """Count `module`'s forward calls inside the block (one per autoregressive step: CFG is batched)."""
    calls = [0]
    handle = module.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


@torch.no_grad()
def generate_clips(model: tp.Any, metadata: tp.Sequence[dict], protocol: LMProtocol,
                   batch_size: tp.Optional[int] = None) -> tp.Dict[str, tp.Any]:
    """Clips [N, C, L] for `metadata` (batches of `batch_size`, default the protocol's), with wall time per
    second of audio and forward passes per frame."""
    model.set_generation_params(duration=protocol.clip_seconds, use_sampling=True, top_k=250, temperature=1.0,
                                cfg_coef=protocol.cfg_coef)
    torch.manual_seed(protocol.seed)
    batch_size = batch_size or protocol.gen_batch_size
    clips, frames = [], 0
    begin = time.perf_counter()
    with counting_forward_passes(model.lm) as calls:
        for start in range(0, len(metadata), batch_size):
            audio, tokens = model.generate_with_metadata(metadata[start:start + batch_size], return_tokens=True)
            clips.append(audio.cpu())
            frames += tokens.shape[-1]  # frames of one clip, summed over batches (passes are per batch)
    seconds = time.perf_counter() - begin
    clips_t = torch.cat(clips)
    audio_seconds = clips_t.shape[0] * clips_t.shape[-1] / model.sample_rate
    return {'clips': clips_t, 'gen_seconds_per_audio_second': seconds / audio_seconds,
            'forward_passes_per_frame': calls[0] / frames, 'gen_wall_seconds': seconds}


@torch.no_grad()
def unigram_entropy(codec: tp.Any, protocol: LMProtocol) -> tp.List[float]:
    """Plug-in entropy (nats) of each codebook's tokens over the held-out split, in clip-long segments."""
    from ....metrics.information import entropy_from_counts
    from ....data.audio_input import load_eval_audio
    segments = load_eval_audio(protocol.heldout, codec.sample_rate, codec.channels, protocol.clip_seconds).segments
    counts = torch.zeros(codec.num_codebooks, codec.cardinality, dtype=torch.long)
    for start in range(0, segments.shape[0], protocol.batch_size):
        codes, _ = codec.encode(segments[start:start + protocol.batch_size])  # [B, K, T]
        for k in range(codec.num_codebooks):
            counts[k] += torch.bincount(codes[:, k].flatten(), minlength=codec.cardinality)
    return [entropy_from_counts(c)[0] for c in counts]


def evaluate_lm(folder: str, protocol: LMProtocol, quality: tp.Optional[tp.Any] = None,
                pattern: str = 'delay') -> tp.Dict[str, float]:
    """Metrics of the LM in XP folder `folder` (see the module docstring); FAD/KL when `quality` is given and
    the LM generates `num_clips` clips (flatten LMs generate `flatten_clips` when set). Generation speed and
    forward passes per frame come from one batch of `timing_clips` clips, the same for every LM."""
    from ....metrics.factorization_gap import cross_entropy_on_manifest
    from ....models.musicgen_mmd import MusicGenMMD
    from .quality import clip_metadata
    model = MusicGenMMD.get_pretrained(str(folder), device='cpu')
    ce = cross_entropy_on_manifest(model, protocol.heldout, num_samples=protocol.ce_segments,
                                   batch_size=protocol.batch_size, segment_duration=protocol.clip_seconds,
                                   seed=protocol.seed)
    metrics: tp.Dict[str, float] = {f'ce_q{k + 1}': v for k, v in enumerate(ce.per_codebook)}
    metrics['ce_per_frame'] = ce.per_frame
    timing = generate_clips(model, clip_metadata(protocol.heldout, protocol.timing_clips), protocol,
                            batch_size=protocol.timing_clips)
    metrics.update({k: v for k, v in timing.items() if k != 'clips'})
    num_clips = protocol.flatten_clips if pattern == 'flatten' and protocol.flatten_clips else protocol.num_clips
    # one batch of timing_clips is exactly what generating num_clips == timing_clips would draw again
    same = num_clips == protocol.timing_clips <= protocol.gen_batch_size
    clips = timing['clips'] if same else generate_clips(model, clip_metadata(protocol.heldout, num_clips),
                                                        protocol)['clips']
    metrics['clips'] = float(num_clips)
    metrics['silent_clips'] = float((clips.flatten(1).abs().amax(dim=1) < 1e-4).sum())
    if quality is not None and num_clips == protocol.num_clips:
        metrics.update({k: v for k, v in quality.score(clips, model.sample_rate).items()})
    return metrics


@torch.no_grad()
def evaluate_codec(sig: str, protocol: LMProtocol, floor_clips: tp.Optional[torch.Tensor] = None,
                   quality: tp.Optional[tp.Any] = None) -> tp.Dict[str, float]:
    """Unigram entropy of codec `sig`'s tokens, and FAD/KL of its reconstructions of `floor_clips`."""
    from ....environment import SIG_PREFIX
    from ....models.loaders import load_compression_model
    codec = load_compression_model(SIG_PREFIX + sig, device='cpu')
    entropies = unigram_entropy(codec, protocol)
    metrics = {f'unigram_q{k + 1}': v for k, v in enumerate(entropies)}
    metrics['unigram_per_frame'] = sum(entropies)
    if quality is not None and floor_clips is not None:
        recon = torch.cat([codec(floor_clips[i:i + protocol.batch_size]).x[..., :floor_clips.shape[-1]]
                           for i in range(0, floor_clips.shape[0], protocol.batch_size)])
        metrics.update({f'recon_{k}': v for k, v in quality.score(recon, codec.sample_rate).items()})
    return metrics
