"""Evaluate one trained codec on held-out audio, with one protocol for every model so their numbers compare:
MMD, total correlation, per-codebook MI, MSSpec, liveness (SI-SNR, log-mel correlation, output/output
correlation, code perplexity, the zero-embedding test of `metrics.code_use`) and FAD of the reconstructions
against the originals.

The audio (the evaluate split) is read once (`load_audio`): its files, and their non-overlapping
segments of the training length, shuffled with the protocol's seed so that a batch mixes files
(the output/output correlation compares the clips of a batch). Independence: `CodebookIndependence`
(paper protocol: pairwise TC over `num_pairs` random couples, in % of the joint entropy, plus the
delay-aligned variant); the MMD is the Gaussian multi-scale MMD of the quantized streams with
codebook normalization (scale-invariant, so models whose latents differ in scale compare),
delay-aligned and parallel, averaged over `mmd_draws` shuffles of at most `mmd_rows` rows, both as
eq. (7) and with the shared pairs excluded (0 in expectation for independent codebooks).
Reconstruction: MSSpec is the solver's loss built from the run's config; `si_snr_db` and the other
liveness numbers are `metrics.liveness.Liveness` means over the segments (SI-SNR in dB per clip,
higher is better). FAD (`fad_musicnn`): musicnn embeddings of 3 s patches every `fad_hop` seconds of
the whole evaluation files and of their reconstructions (`fad_chunk` seconds per codec call); a
full-rank covariance needs >= 201 patches per set (the evaluate split, 314 s, gives ~300 at a 1 s
hop), else FAD is left out and `fad_patches` says how many there were. Given the past
(`metrics.conditional_information`, Miller-Madow, nats, delay-aligned frames of all segments):
`tc_cond_delay`, the total correlation of a frame's codes within strata of the previous frame's first
code (what `mmd.shuffle: conditional` lowers), and `tc_nats_delay`, the plain total correlation of the
same frames; both are biased upwards by the joint states' sparsity: compare codecs at equal frame counts.
"""
import dataclasses
import logging
from pathlib import Path
import typing as tp

import omegaconf
import torch

from ...data.audio_input import EvalAudio, load_eval_audio
from ...environment import repo_relative

EVAL_VERSION = 3  # bump when the protocol changes: cached evaluations are then recomputed
logger = logging.getLogger(__name__)


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
    fad: bool = True
    fad_hop: float = 1.0
    fad_chunk: float = 10.0

    def key(self) -> dict:
        """What a cached evaluation must match; the manifest repository-relative (see `LMProtocol.key`)."""
        return {'version': EVAL_VERSION, **dataclasses.asdict(self), 'manifest': repo_relative(self.manifest)}


def load_audio(protocol: EvalProtocol, sample_rate: int, channels: int) -> EvalAudio:
    """The protocol's evaluation audio (`data.audio_input.load_eval_audio`: full segments, shuffled)."""
    return load_eval_audio(protocol.manifest, sample_rate, channels, protocol.segment_duration,
                           protocol.max_segments, protocol.seed)


def eval_mmd_losses(mmd_cfg: omegaconf.DictConfig, max_rows: int) -> tp.Dict[str, torch.nn.Module]:
    """The MMD estimators of the protocol: the Gaussian kernel and the global shuffle for every run (the kernels
    group's runs and `mmd.shuffle=conditional` runs too, so their numbers compare), with the run's radii."""
    from ...losses import MMDLoss
    from ...losses.mmd_config import MMDLossConfig, with_added_keys
    losses = {}
    fixed = {'kernel': 'gaussian', 'normalize': 'codebook', 'max_rows': max_rows, 'shuffle': 'global'}
    for delay in (True, False):
        for exclude in (False, True):
            name = 'mmd' + ('' if delay else '_parallel') + ('_unbiased' if exclude else '')
            cfg = {**with_added_keys(mmd_cfg), 'delay': delay, 'exclude_shared': exclude, **fixed}
            losses[name] = MMDLoss.from_config(MMDLossConfig.parse(cfg))
    return losses


@torch.no_grad()
def evaluate_codec(model: torch.nn.Module, cfg: omegaconf.DictConfig, audio: EvalAudio,
                   protocol: EvalProtocol) -> tp.Dict[str, float]:
    """All the protocol's numbers for `model` (a CompressionModel) on `audio`."""
    from audiocraft.solvers import builders
    from ...losses import codebook_streams
    from ...metrics import CodebookIndependence
    from ...metrics.code_use import zero_code_change
    from ...metrics.conditional_information import conditional_total_correlation
    from ...metrics.liveness import Liveness
    model.eval()
    segments = audio.segments
    metric = CodebookIndependence(model.num_codebooks, model.cardinality, num_pairs=protocol.num_pairs,
                                  seed=protocol.seed, delay=True)
    msspec = builders.get_loss('msspec', cfg)
    liveness = Liveness(model.sample_rate, model.cardinality)
    total_msspec, zero_change = 0., 0.
    streams, all_codes = [], []
    for batch in segments.split(protocol.batch_size):  # codes, reconstruction and MMD streams, one encoding
        x, scale = model.preprocess(batch)
        emb = model.encoder(x)
        # codes [B, K, T] (what model.encode(batch) gives) and streams from one pass through the quantizer
        batch_streams, codes = codebook_streams(model.quantizer, emb, kind='quantized', with_codes=True)
        metric.update(codes)
        all_codes.append(codes)
        streams.append(batch_streams)
        y = model.decode(codes, scale)[..., :batch.shape[-1]]
        total_msspec += msspec(y, batch).item() * len(batch)
        liveness.update(batch, y, codes)
        zero_change += float(zero_code_change(model, codes).sum())
    results = {'msspec': total_msspec / len(segments), 'zero_code_change': zero_change / len(segments)}
    live = liveness.compute()
    results['si_snr_db'] = live.pop('sisnr_db')
    results.update(live)
    results.update({key: float(value) for key, value in metric.compute().items()})
    results.update(_mmd_values(torch.cat(streams), cfg.mmd, protocol))
    conditional = conditional_total_correlation(torch.cat(all_codes), model.cardinality, delay=True)
    results.update({'tc_cond_delay': conditional['tc_cond_mm'], 'tc_nats_delay': conditional['tc_mm']})
    if protocol.fad:
        results.update(reconstruction_fad(model, audio, protocol))
    results['n_segments'] = float(len(segments))
    return results


def _mmd_values(streams: torch.Tensor, mmd_cfg: omegaconf.DictConfig, protocol: EvalProtocol) -> tp.Dict[str, float]:
    generator = torch.Generator().manual_seed(protocol.seed)
    values = {}
    for name, loss in eval_mmd_losses(mmd_cfg, protocol.mmd_rows).items():
        draws = [loss(streams, generator=generator).item() for _ in range(protocol.mmd_draws)]
        values[name] = sum(draws) / len(draws)
    return values


@torch.no_grad()
def reconstruct(model: torch.nn.Module, wav: torch.Tensor, chunk: int) -> torch.Tensor:
    """The codec's reconstruction of a whole file wav [C, T], encoded `chunk` samples at a time."""
    pieces = []
    for piece in wav[None].split(chunk, dim=-1):
        codes, scale = model.encode(piece)
        pieces.append(model.decode(codes, scale)[..., :piece.shape[-1]])
    return torch.cat(pieces, dim=-1)[0]


def reconstruction_fad(model: torch.nn.Module, audio: EvalAudio, protocol: EvalProtocol,
                       embedder: tp.Optional[tp.Callable[..., tp.Any]] = None) -> tp.Dict[str, float]:
    """{'fad_musicnn', 'fad_patches'}: FAD of the reconstructions of `audio.files` against the files
    (see the module docstring); without 'fad_musicnn' when a set has too few patches (logged)."""
    from ...music_quality.fad import FrechetAudioDistanceMetric
    from ...music_quality.musicnn.model import EMBEDDING_DIM
    if embedder is None:
        if audio.embedder is None:
            from ...music_quality.musicnn.embedding import MusicnnEmbedder
            audio.embedder = MusicnnEmbedder(hop_seconds=protocol.fad_hop)
        embedder = audio.embedder

    def embed(wavs: tp.Iterable[torch.Tensor], which: str) -> torch.Tensor:
        out = [embedder(w, audio.sample_rate, name=f'{which} {i}', allow_silence=True).embeddings
               for i, w in enumerate(wavs) if w.shape[-1] >= min_samples]
        return torch.cat(out) if out else torch.zeros(0, EMBEDDING_DIM)

    min_samples = _min_samples(audio)

    if audio.reference_embeddings is None:
        audio.reference_embeddings = embed(audio.files, 'evaluation file')
    chunk = int(round(protocol.fad_chunk * audio.sample_rate))
    generated = embed((reconstruct(model, wav, chunk) for wav in audio.files), 'reconstruction of file')
    fad = FrechetAudioDistanceMetric(hop_seconds=protocol.fad_hop)
    fad.update_embeddings(reference=audio.reference_embeddings, generated=generated)
    results = {'fad_patches': float(len(generated))}
    try:
        results['fad_musicnn'] = fad.compute()
    except ValueError as exc:
        logger.warning("FAD left out: %s", exc)
    return results


def _min_samples(audio: EvalAudio) -> int:
    """Samples of one musicnn patch at the audio's rate (shorter files give no patch)."""
    from ...music_quality.musicnn.embedding import MIN_DURATION
    return int(MIN_DURATION * audio.sample_rate) + 1


def load_codec(checkpoint: Path) -> tp.Tuple[omegaconf.DictConfig, torch.nn.Module]:
    """The config and the compression model (best state) of a solver checkpoint."""
    from ...compat.checkpoints import checkpoint_config, load_state
    from ...models.loaders import compression_model_from_state
    state = load_state(checkpoint)
    return checkpoint_config(state, checkpoint), compression_model_from_state(state, checkpoint)


def evaluate_checkpoint(checkpoint: Path, protocol: EvalProtocol, cache: tp.Optional[Path] = None,
                        audio: tp.Optional[EvalAudio] = None) -> tp.Dict[str, float]:
    """Evaluate the best state of a solver checkpoint, reusing `cache` when it holds the same
    protocol for the same checkpoint file (size and modification time)."""
    from ..common.harness import CachedJSON, file_key
    cached = CachedJSON(cache, {'protocol': protocol.key(), 'checkpoint': str(checkpoint), **file_key(checkpoint)})
    results = cached.get()
    if results is not None:
        return results
    cfg, model = load_codec(checkpoint)
    if audio is None or audio.sample_rate != model.sample_rate:
        audio = load_audio(protocol, model.sample_rate, model.channels)
    return cached.put(evaluate_codec(model, cfg, audio, protocol))
