"""Factorization gap: what a delay-pattern LM loses by predicting the codebooks of a frame independently.

For one codec and one dataset, train two LMs the same way, one with the delay pattern (MusicGen:
the K codebooks of a step are predicted in parallel, i.e. from the product of their marginals given
the past) and one with the flatten pattern (`codebooks_pattern.modeling=unroll`: one token per step,
the joint distribution). The gap is the held-out cross-entropy per frame of the delay LM minus that
of the flatten LM, in nats per frame:

    gap = sum_k CE_k(delay) - sum_k CE_k(flatten),

with CE_k the mean cross-entropy of codebook k's tokens. A perfectly independent codec (given the
past) leaves nothing for flattening to gain: the gap measures how much the codebook dependencies
that EnCodec-MMD removes cost a factorized LM, in the LM's own units. It goes beyond the paper,
which compares the two patterns through FAD/KL/CLAP only (Table 2). Both LMs are finite-capacity
and finite-data models, so the gap is an estimate, and may be negative when flattening makes
training harder (the paper's posited reason for the flatten LM's worse FAD).

Units: audiocraft logs `ce` as the mean over the K codebooks of each codebook's mean token CE
(`MusicGenSolver._compute_cross_entropy` divides the sum by K), and `ce_q1..ce_qK` per codebook.
Per-frame CE is the sum of the `ce_qk` (= K * ce); comparing `ce` of a delay and a flatten LM gives
the same sign, but per-frame nats are what a likelihood per second of audio is made of
(x frame rate: nats per second).

Usage::

    # from the valid stage of two XPs (their last valid `ce_q*` in history.json)
    python -m audiocraft_mmd.metrics.factorization_gap --delay //sig/A --flatten //sig/B
    # or re-evaluated on the same held-out segments of a manifest folder
    python -m audiocraft_mmd.metrics.factorization_gap --delay //sig/A --flatten //sig/B \\
        --manifest dataset/mmd_music/egs/valid
"""
import argparse
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import sys
import typing as tp

import torch
from torch.nn import functional as F

from .. import environment


@dataclass
class FrameCrossEntropy:
    """Cross-entropy of one LM: per codebook (nats per token) and per frame (their sum)."""
    per_codebook: tp.List[float]
    source: str

    @property
    def per_frame(self) -> float:
        return float(sum(self.per_codebook))

    @property
    def per_token(self) -> float:
        """What audiocraft logs as `ce`: the mean over codebooks."""
        return self.per_frame / len(self.per_codebook)


def cross_entropy_from_history(ref: str, stage: str = 'valid') -> FrameCrossEntropy:
    """Last `stage` metrics `ce_q1..ce_qK` of an XP (`//sig/SIG` or its folder) from its history.json."""
    path = environment.xp_folder(ref) / environment.HISTORY_NAME
    if not path.exists():
        raise FileNotFoundError(f"No history at {path} (from {ref!r})")
    history = json.loads(path.read_text())
    for epoch in reversed(history):
        metrics = epoch.get(stage)
        if not metrics:
            continue
        codebooks = sorted((int(k[len('ce_q'):]), v) for k, v in metrics.items()
                           if k.startswith('ce_q') and k[len('ce_q'):].isdigit())
        if not codebooks:
            raise ValueError(f"{path}: the {stage} metrics hold no ce_q* (not a MusicGen XP?): {sorted(metrics)}")
        return FrameCrossEntropy([float(v) for _, v in codebooks], f"{ref} ({stage}, history)")
    raise ValueError(f"{path}: no epoch with a {stage!r} stage yet")


@torch.no_grad()
def cross_entropy_on_manifest(model, manifest: tp.Union[str, Path], num_samples: int = 64, batch_size: int = 8,
                              segment_duration: tp.Optional[float] = None, conditioned: bool = True,
                              seed: int = 0) -> FrameCrossEntropy:
    """Held-out cross-entropy of a MusicGen model over fixed segments of a manifest.

    Segments are drawn deterministically (the same for every model with the same arguments), with the
    MusicGen metadata of each wav's JSON sidecar as conditioning (no condition dropout: eval mode).

    Args:
        model (MusicGen): e.g. `MusicGenMMD.get_pretrained('//sig/SIG')`.
        manifest (str or Path): folder with data.jsonl (or the file).
        num_samples (int): number of segments.
        segment_duration (float, optional): seconds; default the model's training segment.
        conditioned (bool): condition on the sidecars' descriptions, else unconditional.
    Returns:
        FrameCrossEntropy: token-weighted mean CE of each codebook, and their sum per frame.
    """
    from audiocraft.data.music_dataset import MusicDataset
    from audiocraft.modules.conditioners import ConditioningAttributes
    # audiocraft's datasets map paths through AudioCraftEnvironment, which reads a team file from a
    # config/ folder beside site-packages that its wheel does not ship: point it at ours.
    environment.point_audiocraft_at_our_teams()
    lm, codec = model.lm, model.compression_model
    duration = segment_duration or model.max_duration
    dataset = MusicDataset.from_meta(str(manifest), segment_duration=duration, sample_rate=codec.sample_rate,
                                     channels=codec.channels, num_samples=num_samples, shuffle=False,
                                     sample_on_duration=False, sample_on_weight=False, min_segment_ratio=0.,
                                     info_fields_required=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collater)
    torch.manual_seed(seed)
    totals = torch.zeros(lm.num_codebooks, dtype=torch.float64)
    counts = torch.zeros(lm.num_codebooks, dtype=torch.float64)
    for audio, infos in loader:
        audio = audio.to(model.device)
        codes, scale = codec.encode(audio)  # [B, K, T]
        assert scale is None, "MusicGen needs a codec without rescaling"
        if conditioned:
            attributes = [info.to_condition_attributes() for info in infos]
        else:
            attributes = [ConditioningAttributes(text={'description': None}) for _ in infos]
        output = lm.compute_predictions(codes, attributes)  # logits [B, K, T, card], mask [B, K, T]
        for k in range(lm.num_codebooks):
            mask = output.mask[:, k]
            ce = F.cross_entropy(output.logits[:, k][mask].float(), codes[:, k][mask], reduction='sum')
            totals[k] += ce.item()
            counts[k] += mask.sum().item()
    if (counts == 0).any():
        raise ValueError(f"No valid tokens for some codebooks on {manifest}")
    return FrameCrossEntropy((totals / counts).tolist(), f"{getattr(model, 'name', 'model')} on {manifest}")


@dataclass
class FactorizationGap:
    delay: FrameCrossEntropy
    flatten: FrameCrossEntropy
    frame_rate: tp.Optional[float] = None

    @property
    def nats_per_frame(self) -> float:
        return self.delay.per_frame - self.flatten.per_frame

    @property
    def per_codebook(self) -> tp.List[float]:
        """The gap of each codebook (nats per token): delay minus flatten CE of codebook k."""
        return [d - f for d, f in zip(self.delay.per_codebook, self.flatten.per_codebook)]

    def as_dict(self) -> dict:
        out = {
            'delay': {**asdict(self.delay), 'per_frame': self.delay.per_frame},
            'flatten': {**asdict(self.flatten), 'per_frame': self.flatten.per_frame},
            'gap_nats_per_frame': self.nats_per_frame,
            'gap_bits_per_frame': self.nats_per_frame / math.log(2),
        }
        if self.frame_rate:
            out['gap_nats_per_second'] = self.nats_per_frame * self.frame_rate
        return out


def factorization_gap(delay: str, flatten: str, manifest: tp.Optional[str] = None, device: str = 'cpu',
                      **kwargs) -> FactorizationGap:
    """Gap between a delay and a flatten LM (`//sig/SIG`, XP folders or export folders).

    Without `manifest`: from the last valid stage of both XPs. With it: both re-evaluated on the same
    segments (`cross_entropy_on_manifest`, extra kwargs go there); they must share a codec.
    """
    if manifest is None:
        return FactorizationGap(cross_entropy_from_history(delay), cross_entropy_from_history(flatten))
    from ..models.musicgen_mmd import MusicGenMMD
    models = [MusicGenMMD.get_pretrained(ref, device=device) for ref in (delay, flatten)]
    patterns = [type(m.lm.pattern_provider).__name__ for m in models]
    if patterns[0] == patterns[1]:
        raise ValueError(f"Both LMs use {patterns[0]}: expected a delay and an unroll (flatten) LM")
    codecs = [(m.compression_model.sample_rate, m.compression_model.frame_rate, m.compression_model.cardinality,
               m.compression_model.num_codebooks) for m in models]
    if codecs[0] != codecs[1]:
        raise ValueError(f"The two LMs use different codecs (sample rate, frame rate, bins, K): {codecs}")
    duration = kwargs.pop('segment_duration', None) or min(m.max_duration for m in models)
    ces = [cross_entropy_on_manifest(m, manifest, segment_duration=duration, **kwargs) for m in models]
    return FactorizationGap(ces[0], ces[1], frame_rate=models[0].frame_rate)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--delay', required=True, help="delay-pattern LM: //sig/SIG, XP folder or export folder")
    parser.add_argument('--flatten', required=True, help="flatten (unroll) LM trained the same way")
    parser.add_argument('--manifest', help="re-evaluate both on this manifest folder (else: valid CE from history)")
    parser.add_argument('--num-samples', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--unconditional', action='store_true', help="no text conditioning (with --manifest)")
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    kwargs = {}
    if args.manifest:
        kwargs = dict(num_samples=args.num_samples, batch_size=args.batch_size, conditioned=not args.unconditional)
    gap = factorization_gap(args.delay, args.flatten, manifest=args.manifest, device=args.device, **kwargs)
    print(json.dumps(gap.as_dict(), indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
