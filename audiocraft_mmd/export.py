"""Export a trained MusicGen(-MMD) LM and its codec to the folder `MusicGenMMD.get_pretrained` reads.

Usage::

    python -m audiocraft_mmd.export --lm //sig/LM_SIG [--codec //sig/CODEC_SIG] --out DIR

writes `DIR/state_dict.bin` (the LM: `xp.cfg` as yaml text + its best state) and
`DIR/compression_state_dict.bin` (the codec, same layout), the layout of audiocraft's releases.
Both hold only tensors, strings and numbers: they load with `torch.load(weights_only=True)`.
Without `--codec`, the codec is the LM's own `compression_model_checkpoint`.

    python -m audiocraft_mmd.export --package cpu-small --lm //sig/LM_SIG --codec //sig/CODEC_SIG \
        [--root DIR] [--lm-dtype float16] [--card-notes NOTES.md]

writes the packaged model `cpu-small` that `MusicGenMMD.get_pretrained()` loads offline (default root:
the package's `pretrained/` folder; see `audiocraft_mmd.models.packaged`).

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

from .compat.checkpoints import checkpoint_config, load_state, resolve_checkpoint
from .environment import CHECKPOINT_NAME, CODEC_FILE, LM_FILE
from .models.builders import codebook_counts
from .solvers.builders import COMPRESSION_SOLVERS

LM_SOLVERS = ('musicgen', 'musicgen_mmd', 'lm')


class WrongCheckpointKind(ValueError):
    """A checkpoint was given where a checkpoint of another kind was expected."""


def _kind(cfg: omegaconf.DictConfig) -> str:
    solver = cfg.get('solver')
    if solver in LM_SOLVERS:
        return 'MusicGen LM'
    if solver in COMPRESSION_SOLVERS:
        return 'compression model (codec)'
    return f'{solver!r} solver'


def _version() -> str:
    from audiocraft import __version__
    return __version__


def _exported_package(cfg: omegaconf.DictConfig, weights: dict) -> dict:
    return {
        'best_state': weights,
        'xp.cfg': omegaconf.OmegaConf.to_yaml(cfg),
        'version': _version(),
        'exported': True,
    }


def _read(ref: tp.Union[str, Path]) -> tp.Tuple[dict, Path]:
    """State of an exported file, or of the solver checkpoint `ref` points at (//sig/, folder, file)."""
    path = Path(str(ref)).expanduser()
    if path.is_file():
        return load_state(path), path
    if path.is_dir() and (path / LM_FILE).exists() and not (path / CHECKPOINT_NAME).exists():
        raise WrongCheckpointKind(f"{path} is an exported MusicGen folder, not a single checkpoint; "
                                  f"pass {path / LM_FILE} or {path / CODEC_FILE}")
    checkpoint = resolve_checkpoint(ref)
    return load_state(checkpoint), checkpoint


def _weights(state: dict, path: Path) -> dict:
    if state.get('exported'):
        return state['best_state']
    if state.get('fsdp_best_state'):
        return state['fsdp_best_state']['model']
    best = state.get('best_state') or {}
    if not best.get('model'):
        raise ValueError(f"{path} holds no best state (best_state.model): did the XP run a valid stage?")
    return best['model']


def lm_package(ref: tp.Union[str, Path]) -> tp.Tuple[dict, Path]:
    """Exported LM package (see module docstring) from `//sig/SIG`, an XP folder, a checkpoint or an
    exported `state_dict.bin`. Raises WrongCheckpointKind when `ref` is not a MusicGen LM."""
    state, path = _read(ref)
    cfg = checkpoint_config(state, path)
    if cfg.get('solver') not in LM_SOLVERS:
        raise WrongCheckpointKind(f"{path} (from {str(ref)!r}) is a {_kind(cfg)} checkpoint, not a MusicGen LM "
                                  f"(its solver is {cfg.get('solver')!r}, expected one of {LM_SOLVERS})")
    return _exported_package(cfg, _weights(state, path)), path


def compression_package(ref: tp.Union[str, Path]) -> tp.Tuple[dict, tp.Union[Path, str]]:
    """Exported codec package from `//sig/SIG`, an XP folder, a checkpoint, an exported file, or
    `//pretrained/NAME` (stored as a reference, as audiocraft's `export_pretrained_compression_model`).
    Raises WrongCheckpointKind when `ref` is not a compression model."""
    ref = str(ref)
    if ref.startswith('//pretrained/'):
        name = ref[len('//pretrained/'):]
        return {'pretrained': name, 'exported': True, 'version': _version()}, ref
    state, path = _read(ref)
    if 'pretrained' in state and state.get('exported'):
        return state, path
    cfg = checkpoint_config(state, path)
    if cfg.get('solver') not in COMPRESSION_SOLVERS:
        raise WrongCheckpointKind(f"{path} (from {ref!r}) is a {_kind(cfg)} checkpoint, not a compression model "
                                  f"(its solver is {cfg.get('solver')!r}, expected one of {COMPRESSION_SOLVERS})")
    return _exported_package(cfg, _weights(state, path)), path


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
    parser.add_argument('--lm', required=True, help="//sig/SIG of a MusicGen XP, its folder or checkpoint")
    parser.add_argument('--codec', help="codec: //sig/SIG, checkpoint, exported file or //pretrained/NAME "
                                        "(default: the LM's compression_model_checkpoint)")
    parser.add_argument('--out', help="output folder (an export)")
    parser.add_argument('--package', metavar='NAME', help="write packaged model NAME instead (see module docstring)")
    parser.add_argument('--root', help="with --package: folder of packaged models (default: the package's)")
    parser.add_argument('--lm-dtype', default='float16', choices=('float16', 'float32'), help="with --package")
    parser.add_argument('--card-notes', help="with --package: a Markdown file appended to the model card")
    args = parser.parse_args(argv)
    if (args.out is None) == (args.package is None):
        parser.error("give exactly one of --out (an export folder) and --package NAME")
    try:
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
