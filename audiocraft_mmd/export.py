"""Export a trained MusicGen(-MMD) LM and its codec to the folder `MusicGenMMD.get_pretrained` reads.

Usage::

    python -m audiocraft_mmd.export --lm //sig/LM_SIG [--codec //sig/CODEC_SIG] --out DIR

writes `DIR/state_dict.bin` (the LM: `xp.cfg` as yaml text + its best state) and
`DIR/compression_state_dict.bin` (the codec, same layout), the layout of audiocraft's releases.
Both hold only tensors, strings and numbers: they load with `torch.load(weights_only=True)`.
Without `--codec`, the codec is the LM's own `compression_model_checkpoint`. A codec alone::

    python -m audiocraft_mmd.export --codec //sig/CODEC_SIG --out DIR

writes `DIR/compression_state_dict.bin`, which audiocraft's own `CompressionModel.get_pretrained(path)` loads
(an EnCodec codec: audiocraft's model, our training) as well as `audiocraft_mmd.models.loaders`.

    python -m audiocraft_mmd.export --package cpu-small --lm //sig/LM_SIG --codec //sig/CODEC_SIG \
        [--root DIR] [--lm-dtype float16] [--card-notes NOTES.md]

writes the packaged model `cpu-small` that `MusicGenMMD.get_pretrained()` loads offline (default root:
the package's `pretrained/` folder; see `audiocraft_mmd.models.packaged`).

    python -m audiocraft_mmd.export --transformers --codec //sig/CODEC_SIG --out DIR

writes the codec alone in transformers' EnCodec format (`config.json` + `model.safetensors`), which
`transformers.EncodecModel.from_pretrained(DIR)` loads; PVQ and DAC codecs cannot be (`models/transformers_export.py`).

audiocraft's `export_lm` / `export_encodec` `torch.load` solver checkpoints with torch's default
(`weights_only=True` since torch 2.6), which refuses the omegaconf config of audiocraft-written
checkpoints; here solver checkpoints load through `audiocraft_mmd.compat.checkpoints.load_state`.
"""
import argparse
from pathlib import Path
import sys
import typing as tp

import omegaconf
import torch

from .environment import CODEC_FILE, LM_FILE
from .models.builders import codebook_counts
from .models.exported import WrongCheckpointKind, compression_package, lm_package


def export_compression_model(ref: tp.Union[str, Path], out_file: tp.Union[str, Path],
                             package: tp.Optional[dict] = None) -> Path:
    """Write the exported codec package of `ref` to `out_file` (weights-only loadable); `package`, when
    the caller already holds `compression_package(ref)[0]`, saves reading the checkpoint again."""
    pkg = package if package is not None else compression_package(ref)[0]
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pkg, out_file)
    return out_file


def export_musicgen(lm: tp.Union[str, Path], out: tp.Union[str, Path],
                    codec: tp.Optional[tp.Union[str, Path]] = None) -> Path:
    """Export an LM and its codec to the folder `out` (see module docstring). Returns `out`."""
    lm_pkg, lm_path = lm_package(lm)
    lm_cfg = omegaconf.OmegaConf.create(lm_pkg['xp.cfg'])
    if codec is None:
        codec = lm_cfg.get('compression_model_checkpoint')
        if codec is None:
            raise ValueError(f"{lm_path} has no compression_model_checkpoint in its config: pass --codec")
    codec_pkg, _ = compression_package(codec)
    if 'xp.cfg' in codec_pkg:
        codec_cfg = omegaconf.OmegaConf.create(codec_pkg['xp.cfg'])
        n_q, bins = codebook_counts(codec_cfg)  # rvq, pvq or dac
        if bins is not None and bins != lm_cfg.transformer_lm.card:
            raise ValueError(f"The codec {codec!r} has {bins} entries per codebook but the LM {lm!r} was trained "
                             f"on {lm_cfg.transformer_lm.card}")
        if n_q is not None and n_q < lm_cfg.transformer_lm.n_q:
            raise ValueError(f"The codec {codec!r} has {n_q} codebooks but the LM {lm!r} models "
                             f"{lm_cfg.transformer_lm.n_q}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(lm_pkg, out / LM_FILE)
    torch.save(codec_pkg, out / CODEC_FILE)
    return out


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lm', help="//sig/SIG of a MusicGen XP, its folder or checkpoint (without: --codec only, "
                                     "in audiocraft's format or with --transformers in transformers')")
    parser.add_argument('--codec', help="codec: //sig/SIG, checkpoint, exported file or //pretrained/NAME "
                                        "(default: the LM's compression_model_checkpoint)")
    parser.add_argument('--out', help="output folder (an export)")
    parser.add_argument('--package', metavar='NAME', help="write packaged model NAME instead (see module docstring)")
    parser.add_argument('--root', help="with --package: folder of packaged models (default: the package's)")
    parser.add_argument('--lm-dtype', default='float16', choices=('float16', 'float32'), help="with --package")
    parser.add_argument('--card-notes', help="with --package: a Markdown file appended to the model card")
    parser.add_argument('--transformers', action='store_true',
                        help="write --codec alone to --out in transformers' EnCodec format")
    args = parser.parse_args(argv)
    if args.transformers and not (args.codec and args.out and args.lm is None and args.package is None):
        parser.error("--transformers takes --codec and --out (and no --lm or --package)")
    if (args.out is None) == (args.package is None):
        parser.error("give exactly one of --out (an export folder) and --package NAME")
    if args.lm is None and (args.codec is None or args.package):
        parser.error("give --lm, or --codec with --out to export a codec alone")
    try:
        if args.transformers:
            from .models.transformers_export import export_transformers
            folder = export_transformers(args.codec, args.out)
            print(f"Exported {args.codec} to {folder} in transformers' format; load with "
                  f"transformers.EncodecModel.from_pretrained({str(folder)!r})")
            return 0
        if args.lm is None:
            codec_file = export_compression_model(args.codec, Path(args.out) / CODEC_FILE)
            print(f"Exported the codec to {codec_file}; load with audiocraft's "
                  f"CompressionModel.get_pretrained({str(codec_file)!r})")
            return 0
        if args.package:
            from .models.packaged import write_package
            notes = Path(args.card_notes).read_text() if args.card_notes else None
            folder = write_package(args.package, args.lm, args.codec, root=args.root, lm_dtype=args.lm_dtype,
                                   notes=notes)
            print(f"Packaged {args.package!r} in {folder}; load with MusicGenMMD.get_pretrained({args.package!r}"
                  + (f", folder={args.root!r})" if args.root else ")"))
            return 0
        out = export_musicgen(args.lm, args.out, codec=args.codec)
    except (WrongCheckpointKind, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Exported to {out} ({LM_FILE}, {CODEC_FILE}); load with "
          f"audiocraft_mmd.models.MusicGenMMD.get_pretrained({str(out)!r})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
