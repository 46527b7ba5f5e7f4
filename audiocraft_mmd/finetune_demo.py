"""What `make demo`'s fine-tuning changed: the packaged codec before, the fine-tuned one after, and where to listen.

    python -m audiocraft_mmd.finetune_demo solver=compression/encodec_mmd_finetune_cpu device=cpu [--figure PNG]

(the overrides of the `dora run` that fine-tuned it). Both codecs are measured with the rehearsal's protocol
(`studies.finetune.evaluation`) on the first `--segments` 1 s segments of the evaluate split: total correlation
(plain and delay-aligned), MMD, SI-SNR, log-mel correlation, liveness, the fraction of tokens that changed, and
whether decoder and codebooks stayed bit-identical. The first `--seconds` of one evaluate file are written as
reference / before / after WAVs with a mel spectrogram of the three (`--figure` to also save it elsewhere).
"""
import argparse
from pathlib import Path
import shutil
import sys
import typing as tp

import torch

ROWS = (('tc', 'TC, % of joint entropy (lower: more independent)'), ('tc_delay', 'delay-aligned TC, %'),
        ('mmd', 'MMD (delay-aligned)'), ('si_snr_db', 'SI-SNR, dB'), ('logmel_corr', 'log-mel correlation'),
        ('cross_corr', 'output/output correlation'), ('min_usage', 'smallest codebook usage'),
        ('zero_code_change', 'zero-embedding change'), ('live', 'live (decoder uses its codes)'),
        ('token_change', 'tokens changed vs before'), ('frozen_max_abs_diff', 'decoder/codebooks max |change|'))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m audiocraft_mmd.finetune_demo', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--segments', type=int, default=96, help="1 s evaluate segments measured")
    p.add_argument('--seconds', type=float, default=6., help="length of the clip written to listen to")
    p.add_argument('--figure', type=Path, help="also save the spectrogram PNG here")
    return p


def spectrogram_figure(clips: tp.Sequence[tp.Tuple[str, torch.Tensor]], sample_rate: int, path: Path) -> Path:
    """Log-mel spectrograms of mono clips [T], one panel each, into a PNG (Agg canvas, no pyplot state)."""
    import torchaudio
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=2048, hop_length=320, n_mels=96)
    fig = Figure(figsize=(10, 2.4 * len(clips)))
    for i, (title, wav) in enumerate(clips):
        ax = fig.add_subplot(len(clips), 1, i + 1)
        db = 10 * torch.log10(mel(wav) + 1e-10)
        ax.imshow(db.numpy(), origin='lower', aspect='auto', vmin=float(db.max()) - 80, vmax=float(db.max()),
                  extent=(0, wav.shape[-1] / sample_rate, 0, db.shape[0]), cmap='magma')
        ax.set_title(title)
        ax.set_ylabel('mel band')
    ax.set_xlabel('seconds')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))
    return path


def listen(before: torch.nn.Module, after: torch.nn.Module, wav: torch.Tensor, sample_rate: int,
           folder: Path) -> tp.List[tp.Tuple[str, torch.Tensor, Path]]:
    """(title, clip, WAV path) of the reference and both reconstructions of wav [C, T]."""
    from audiocraft.data.audio import audio_write
    from .studies.codecs.evaluation import reconstruct
    clips = [('reference', wav), ('packaged codec (before)', reconstruct(before, wav, wav.shape[-1])),
             ('fine-tuned with the MMD (after)', reconstruct(after, wav, wav.shape[-1]))]
    out = []
    for (title, clip), stem in zip(clips, ('reference', 'before', 'after')):
        path = audio_write(folder / stem, clip.cpu(), sample_rate, format='wav', strategy='clip')
        out.append((title, clip.mean(0), Path(path)))
    return out


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args, overrides = get_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    from .environment import CHECKPOINT_NAME, DATASET_EGS, repo_relative
    from .metrics.code_use import with_live
    from .models.codec_source import load_source_model, resolve_source
    from .studies.codecs.evaluation import EvalProtocol, load_audio, load_codec
    from .train import main as train_main
    from .studies.finetune.evaluation import measure
    xp = train_main.get_xp(list(overrides))
    checkpoint = xp.folder / CHECKPOINT_NAME
    if not checkpoint.exists():
        print(f"no fine-tuned codec yet: run `dora run {' '.join(overrides)}` first ({checkpoint} missing)")
        return 1
    cfg, after = load_codec(checkpoint)
    before = load_source_model(resolve_source(cfg.continue_from))
    protocol = EvalProtocol(manifest=str(DATASET_EGS / 'evaluate'), max_segments=args.segments, fad=False)
    audio = load_audio(protocol, before.sample_rate, before.channels)
    results = {name: measure(model, cfg, before, audio, protocol) for name, model in (('before', before),
                                                                                      ('after', after))}
    print(f"Fine-tuned {cfg.continue_from} -> //sig/{xp.sig} (finetune.trainable={cfg.finetune.trainable}, "
          f"losses.mmd={cfg.losses.mmd:g}); {len(audio.segments)} evaluate segments of 1 s:")
    print(f"  {'':48s} {'before':>9s} {'after':>9s}")
    for key, label in ROWS:
        values = [with_live(r).get(key) for r in (results['before'], results['after'])]
        print(f"  {label:48s} " + ' '.join(f"{v:9.4g}" if v is not None else f"{'':9s}" for v in values))
    seconds = int(args.seconds * before.sample_rate)
    clips = listen(before, after, audio.files[0][..., :seconds], before.sample_rate, xp.folder / 'demo')
    figure = spectrogram_figure([(t, c) for t, c, _ in clips], before.sample_rate, xp.folder / 'demo' / 'mel.png')
    if args.figure:  # the same picture where the docs keep it
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, args.figure)
    print("Listen (the first seconds of an evaluate piece):")
    for title, _, path in clips:
        print(f"  {title:32s} {repo_relative(path)}")
    print(f"  spectrograms: {repo_relative(figure)}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
