"""Evaluate one trained codec on held-out audio: MMD, total correlation, per-codebook MI,
MSSpec and SI-SNR, with one protocol for every model so their numbers compare.

The audio (the evaluate split) is cut into non-overlapping segments of the training length and
encoded in batches. The independence numbers come from `CodebookIndependence` (paper protocol:
pairwise TC over `num_pairs` random couples, in % of the joint entropy, plus the delay-aligned
variant); the MMD is the Gaussian multi-scale MMD of the quantized streams with codebook
normalization (scale-invariant, so models whose latents differ in scale compare), delay-aligned
and parallel, averaged over `mmd_draws` shuffles of at most `mmd_rows` rows, both as eq. (7)
and with the shared pairs excluded (the unbiased variant, 0 in expectation for independent
codebooks). MSSpec and SI-SNR are the
solver's own losses built from the run's config (`msspec`, `sisnr` blocks); SI-SNR is reported
in dB, higher is better (audiocraft's `sisnr` metric is its negative, see `metrics.si_snr`).
"""
import dataclasses
import json
from pathlib import Path
import typing as tp

import omegaconf
import torch

EVAL_VERSION = 1  # bump when the protocol changes: cached evaluations are then recomputed


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
    manifest: str
    segment_duration: float = 1.0
    batch_size: int = 16
    max_segments: tp.Optional[int] = None
    mmd_rows: int = 2048
    mmd_draws: int = 2
    num_pairs: int = 5
    seed: int = 0

    def key(self) -> dict:
        return {'version': EVAL_VERSION, **dataclasses.asdict(self)}


def load_segments(manifest: tp.Union[str, Path], sample_rate: int, channels: int, segment_duration: float,
                  max_segments: tp.Optional[int] = None) -> torch.Tensor:
    """Non-overlapping full-length segments [N, C, L] of the files of an audiocraft manifest, egs
    folder or audio folder (see `load_entries`; tails shorter than a segment are dropped, see
    `audiocraft_mmd.data.audio_input`), in order."""
    from audiocraft.data.audio import audio_read
    from ..data.audio_input import cut_segments, load_entries, prepare_audio
    length = int(round(segment_duration * sample_rate))
    segments: tp.List[torch.Tensor] = []
    for entry in load_entries(manifest):
        try:
            wav, file_rate = audio_read(entry.path)
        except Exception as exc:  # decoders raise anything on a corrupt file
            raise RuntimeError(f"cannot read evaluation audio {entry.path} (from {manifest}): {exc}") from exc
        wav = prepare_audio(entry, wav, file_rate, sample_rate, channels)  # checks it against the manifest
        segments += cut_segments(wav, length, min_length=length)
        if max_segments is not None and len(segments) >= max_segments:
            break
    if not segments:
        raise ValueError(f"no segment of {segment_duration} s in {manifest}")
    return torch.stack(segments[:max_segments])


def eval_mmd_losses(mmd_cfg: omegaconf.DictConfig, max_rows: int) -> tp.Dict[str, torch.nn.Module]:
    """The MMD estimators of the protocol, with the run's kernel settings."""
    from ..losses import MMDLoss
    losses = {}
    for delay in (True, False):
        for exclude in (False, True):
            name = 'mmd' + ('' if delay else '_parallel') + ('_unbiased' if exclude else '')
            cfg = omegaconf.OmegaConf.merge(mmd_cfg, {'delay': delay, 'exclude_shared': exclude,
                                                      'normalize': 'codebook', 'max_rows': max_rows})
            losses[name] = MMDLoss.from_config(cfg)
    return losses


@torch.no_grad()
def evaluate_codec(model: torch.nn.Module, cfg: omegaconf.DictConfig, segments: torch.Tensor,
                   protocol: EvalProtocol) -> tp.Dict[str, float]:
    """All the protocol's numbers for `model` (a CompressionModel) on `segments` [N, C, L]."""
    from audiocraft.solvers import builders
    from ..losses import rvq_streams
    from ..metrics import CodebookIndependence, measure
    from ..metrics.si_snr import si_snr_db
    model.eval()
    metric = CodebookIndependence(model.num_codebooks, model.cardinality, num_pairs=protocol.num_pairs,
                                  seed=protocol.seed, delay=True)
    measure(model, segments.split(protocol.batch_size), metric)
    msspec, sisnr = builders.get_loss('msspec', cfg), builders.get_loss('sisnr', cfg)
    totals = {'msspec': 0., 'si_snr_db': 0.}
    streams = []
    for batch in segments.split(protocol.batch_size):  # reconstruction and MMD streams
        x, scale = model.preprocess(batch)
        emb = model.encoder(x)
        codes = model.quantizer.encode(emb)  # [B, K, T]
        streams.append(rvq_streams(model.quantizer, emb, kind='quantized'))
        y = model.decode(codes, scale)[..., :batch.shape[-1]]
        totals['msspec'] += msspec(y, batch).item() * len(batch)
        totals['si_snr_db'] += si_snr_db(sisnr(y, batch).item()) * len(batch)
    results = {key: value / len(segments) for key, value in totals.items()}
    results.update({key: float(value) for key, value in metric.compute().items()})
    results.update(_mmd_values(torch.cat(streams), cfg.mmd, protocol))
    results['n_segments'] = float(len(segments))
    return results


def _mmd_values(streams: torch.Tensor, mmd_cfg: omegaconf.DictConfig, protocol: EvalProtocol) -> tp.Dict[str, float]:
    generator = torch.Generator().manual_seed(protocol.seed)
    values = {}
    for name, loss in eval_mmd_losses(mmd_cfg, protocol.mmd_rows).items():
        draws = [loss(streams, generator=generator).item() for _ in range(protocol.mmd_draws)]
        values[name] = sum(draws) / len(draws)
    return values


def evaluate_checkpoint(checkpoint: Path, protocol: EvalProtocol, cache: tp.Optional[Path] = None,
                        segments: tp.Optional[torch.Tensor] = None) -> tp.Dict[str, float]:
    """Evaluate the best state of a solver checkpoint, reusing `cache` when it holds the same
    protocol for the same checkpoint file (size and modification time)."""
    from ..compat.checkpoints import checkpoint_config, load_state
    from ..models.loaders import compression_model_from_state
    stat = checkpoint.stat()
    key = {'protocol': protocol.key(), 'checkpoint': str(checkpoint), 'size': stat.st_size, 'mtime': stat.st_mtime}
    if cache is not None and cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get('key') == key:
            return cached['results']
    state = load_state(checkpoint)
    cfg = checkpoint_config(state, checkpoint)
    model = compression_model_from_state(state, checkpoint)
    if segments is None:
        segments = load_segments(protocol.manifest, model.sample_rate, model.channels, protocol.segment_duration,
                                 protocol.max_segments)
    results = evaluate_codec(model, cfg, segments, protocol)
    if cache is not None:
        cache.write_text(json.dumps({'key': key, 'results': results}, indent=1))
    return results
