"""The FAD validation table and the LMs' FAD-infinity: musicnn patches (3 s, every 1 s) of each set against
the reference split (`python -m audiocraft_mmd.data.prepare --reference-pieces 40`: pieces of our sources
that no split holds).

    python -m audiocraft_mmd.studies.lm.tokens.fad_table --study reports/lm_study --codec-results results.json \
        [--seeds 0 1] [--clips 64] [--clip-seconds 10]

Rows (every number is FAD-infinity with its bootstrap SE, `music_quality.fad_infinity`):
- real held-out: the valid and evaluate pieces (real music of our sources, never in the reference);
- real train crops: `--clips` random crops of the train split;
- codec reconstructions: the held-out pieces through each codec;
- generations: `--clips` clips of each LM (`generation.generate_long`), decoded by its codec;
- noise: white and pink (1/f) noise at the data's -20 dBFS RMS;
- with `--packaged NAME`: a packaged model (`MusicGenMMD.get_pretrained(NAME)`), its codec's reconstructions
  and `--clips` unconditional generations (audiocraft's extension past the training segment), for its model card.
A metric that works puts real held-out far below generations and noise. Each LM's FAD-infinity is also
written beside its run (`runs/<lm>_fad.json`), so the study's report and claims use it.
"""
import argparse
import json
import logging
from pathlib import Path
import sys
import typing as tp

import torch

from ....environment import DATASET_EGS, SIG_PREFIX, repo_relative
from ....music_quality.fad_infinity import fad_infinity
from ....music_quality.spectral_flatness import median_flatness
from ..vocabulary import PATTERNS, RVQ_CODECS

logger = logging.getLogger('audiocraft_mmd.studies.lm.tokens.fad_table')
HOP_SECONDS = 1.0
RMS = 10 ** (-20 / 20)
SAMPLE_RATE = 32000  # the rate of the study's codecs: held-out pieces are read at it


def noise(kind: str, num: int, seconds: float, sample_rate: int, seed: int = 0) -> torch.Tensor:
    """[num, 1, L] white or pink noise at RMS -20 dBFS."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num, 1, int(seconds * sample_rate), generator=g)
    if kind == 'pink':
        spec = torch.fft.rfft(x)
        f = torch.arange(spec.shape[-1]).clamp(min=1).float()
        x = torch.fft.irfft(spec / f.sqrt(), n=x.shape[-1])
    return x / x.square().mean(-1, keepdim=True).sqrt() * RMS


class Embedder:
    def __init__(self):
        from ....music_quality.musicnn.embedding import MusicnnEmbedder
        self.model = MusicnnEmbedder('MSD_musicnn', hop_seconds=HOP_SECONDS)

    def clips(self, clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return torch.cat([self.model(c, sample_rate, name=f'clip {i}', allow_silence=True).embeddings
                          for i, c in enumerate(clips)])

    def manifest(self, manifest: Path) -> torch.Tensor:
        from ....music_quality.sets import embed_set, list_audio
        return embed_set(self.model, list_audio(manifest), progress=False).embeddings


def heldout_waves(sample_rate: int) -> tp.List[torch.Tensor]:
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from ....data.audio_input import load_entries
    out = []
    for split in ('valid', 'evaluate'):
        for e in load_entries(DATASET_EGS / split):
            wav, rate = audio_read(e.path)
            out.append(convert_audio(wav, rate, sample_rate, 1))
    return out


@torch.no_grad()
def reconstruct(codec, waves: tp.Sequence[torch.Tensor], chunk_seconds: float = 10.) -> tp.List[torch.Tensor]:
    """Each wave [C, L] through the codec in chunks; a tail under a quarter chunk is dropped, a short wave kept."""
    chunk = int(chunk_seconds * codec.sample_rate)
    out = []
    for w in waves:
        parts = [codec.decode(*codec.encode(w[None, :, i:i + chunk]))[0] for i in range(0, w.shape[-1], chunk)
                 if i == 0 or w.shape[-1] - i >= chunk // 4]
        out.append(torch.cat(parts, -1))
    return out


def row(name: str, kind: str, reference: torch.Tensor, test: torch.Tensor, audio: tp.Sequence[torch.Tensor],
        seed: int = 0) -> dict:
    """FAD-infinity of embeddings `test` against `reference`, and the spectral flatness of the set's `audio`."""
    r = fad_infinity(reference, test, num_bootstrap=20, seed=seed)
    flat = median_flatness(audio)
    logger.info("%-45s FAD-inf %.2f ± %.2f (FAD %.2f, %d patches), flatness %.4f", name, r.fad_inf, r.se,
                r.fad_full, r.count, flat)
    return {'set': name, 'kind': kind, **r.as_dict(), 'flatness': flat}


@torch.no_grad()
def packaged_rows(name: str, clips: int, seconds: float, reference: torch.Tensor, waves: tp.Sequence[torch.Tensor],
                  emb: Embedder, seed: int = 0) -> tp.List[dict]:
    """The rows of a packaged model: its codec's reconstructions of the held-out pieces (at 32 kHz, as `waves`) and
    `clips` unconditional generations of `seconds` (seeded)."""
    from ....models.musicgen_mmd import MusicGenMMD
    model = MusicGenMMD.get_pretrained(name, device='cpu')
    rec = reconstruct(model.compression_model.eval(), waves)
    rows = [row(f'packaged {name}: reconstructions of the held-out pieces', 'codec', reference,
                torch.cat([emb.model(w, model.sample_rate, name='rec').embeddings for w in rec]), rec)]
    model.set_generation_params(duration=seconds)
    torch.manual_seed(seed)
    audio = torch.cat([model.generate_unconditional(min(16, clips - i)) for i in range(0, clips, 16)])
    rows.append(row(f'packaged {name}: unconditional generations ({clips} x {seconds:g} s)', 'generation',
                    reference, emb.clips(audio, model.sample_rate), audio))
    return rows


def reference_rows(reference: torch.Tensor, emb: Embedder, waves: tp.Sequence[torch.Tensor], clips: int,
                   clip_seconds: float, sample_rate: int) -> tp.List[dict]:
    """The rows whose answer is known: real held-out pieces, real train crops, white and pink noise."""
    from ..clips import random_clips
    rows = [row('real held-out pieces (valid + evaluate)', 'real', reference,
                torch.cat([emb.model(w, sample_rate, name='heldout').embeddings for w in waves]), waves)]
    crops = random_clips(DATASET_EGS / 'train', clips, clip_seconds, sample_rate)
    rows.append(row(f'real train crops ({clips} x {clip_seconds:g} s)', 'real', reference,
                    emb.clips(crops, sample_rate), crops))
    for kind in ('white', 'pink'):
        audio = noise(kind, clips, clip_seconds, sample_rate)
        rows.append(row(f'{kind} noise ({clips} x {clip_seconds:g} s)', 'noise', reference,
                        emb.clips(audio, sample_rate), audio))
    return rows


@torch.no_grad()
def study_rows(name: str, seed: int, codec, study: Path, patterns: tp.Sequence[str], reference: torch.Tensor,
               waves: tp.Sequence[torch.Tensor], emb: Embedder, clips: int, clip_seconds: float,
               sample_rate: int = SAMPLE_RATE) -> tp.List[dict]:
    """The rows of one (codec, seed) of a study: the codec's reconstructions of the held-out `waves` (at
    `sample_rate`), and `clips` generations of each of its LMs whose weights are in `study`. Each LM's FAD is
    also written beside its run (`runs/<lm>_fad.json`) for the study's report."""
    from .lm import LMConfig, build_lm
    from .generation import generate_long
    from .resume import run_path
    if codec.sample_rate != sample_rate:
        raise ValueError(f"codec {name} seed {seed} runs at {codec.sample_rate} Hz, the held-out pieces were read "
                         f"at {sample_rate} Hz")
    rec = reconstruct(codec, waves)
    rows = [row(f'{name} seed {seed}: reconstructions of the held-out pieces', 'codec', reference,
                torch.cat([emb.model(w, codec.sample_rate, name='rec').embeddings for w in rec]), rec)]
    config = LMConfig()
    for pattern in patterns:
        weights = run_path(study, name, pattern, seed).with_suffix('.pt')
        if not weights.exists():
            continue
        lm = build_lm(pattern, codec.num_codebooks, codec.cardinality, config)
        lm.load_state_dict(torch.load(weights, weights_only=True))
        codes = generate_long(lm.eval(), clips, int(clip_seconds * codec.frame_rate), config.frames,
                              config.frames // 2, seed=seed)
        audio = torch.cat([codec.decode(codes[i:i + 16]) for i in range(0, len(codes), 16)])
        r = row(f'{name} seed {seed}: {pattern} LM generations', 'generation', reference,
                emb.clips(audio, codec.sample_rate), audio)
        rows.append(r)
        weights.with_name(weights.stem + '_fad.json').write_text(json.dumps(
            {'metrics': {k: r[k] for k in ('fad_inf', 'fad_inf_se', 'fad_full', 'flatness')}}))
    return rows


def write_table(out: Path, reference_path: Path, reference_patches: int, rows: tp.Sequence[dict]) -> None:
    """`out` (JSON) and the markdown table beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({'reference': repo_relative(reference_path),
                               'reference_patches': reference_patches, 'rows': list(rows)}, indent=1) + '\n')
    lines = ['# FAD validation (musicnn, FAD-infinity ± bootstrap SE)', '',
             f'Reference: the `reference` split ({reference_patches} patches of 3 s every {HOP_SECONDS:g} s).', '',
             'Flatness: median spectral flatness of the set\'s STFT frames (`metrics.spectral_flatness`; white '
             'noise ~0.56, music far lower), an embedding-free check of noise-likeness.', '',
             '| set | kind | FAD-inf | SE | plain FAD | patches | flatness |', '|---|---|---|---|---|---|---|']
    lines += [f"| {r['set']} | {r['kind']} | {r['fad_inf']:.2f} | {r['fad_inf_se']:.2f} | {r['fad_full']:.2f} | "
              f"{int(r['fad_patches'])} | {r['flatness']:.4f} |" for r in rows]
    out.with_suffix('.md').write_text('\n'.join(lines) + '\n')


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--study', type=Path, help="the LM study's folder (rows for its LMs)")
    p.add_argument('--codec-results', type=Path, nargs='+', default=[],
                   help="the codec reproductions' results.json (the study's codecs; several are merged)")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--codecs', nargs='*', default=list(RVQ_CODECS))
    p.add_argument('--packaged', nargs='*', default=[], help="packaged models to add rows for (e.g. cpu-small)")
    p.add_argument('--patterns', nargs='+', default=list(PATTERNS), choices=list(PATTERNS))
    p.add_argument('--clips', type=int, default=64)
    p.add_argument('--clip-seconds', type=float, default=10.)
    p.add_argument('--reference', type=Path, default=DATASET_EGS / 'reference')
    p.add_argument('--out', type=Path, required=True, help="JSON of the table (a .md beside it)")
    return p


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    torch.set_num_threads(1)
    from ....models.loaders import load_compression_model
    from .report import codec_runs
    emb = Embedder()
    reference = emb.manifest(args.reference)
    logger.info("reference: %d patches from %s", len(reference), args.reference)
    runs = codec_runs(args.codec_results)
    waves = heldout_waves(SAMPLE_RATE)
    rows = reference_rows(reference, emb, waves, args.clips, args.clip_seconds, SAMPLE_RATE)
    for seed in args.seeds:
        for name in args.codecs:
            if (name, seed) in runs:
                codec = load_compression_model(SIG_PREFIX + runs[name, seed]['sig']).eval()
                rows += study_rows(name, seed, codec, args.study, args.patterns, reference, waves, emb,
                                   args.clips, args.clip_seconds)
    for name in args.packaged:
        rows += packaged_rows(name, args.clips, args.clip_seconds, reference, waves, emb)
    write_table(args.out, args.reference, len(reference), rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
