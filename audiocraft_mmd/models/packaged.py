"""Packaged models: a trained LM and its codec shipped inside the package, loaded offline by name.

`MusicGenMMD.get_pretrained()` (no argument) loads `DEFAULT_MODEL` from `audiocraft_mmd/pretrained/<name>/`,
written by `python -m audiocraft_mmd.export --package NAME --lm //sig/LM --codec //sig/CODEC`:
`state_dict.bin` (the LM, float16 by default: half the bytes, and weights are cast back to float32
on load), `compression_state_dict.bin` (the codec, float32: its codebooks decide the tokens),
`model.json` (where it came from, sizes, sha256) and `MODEL_CARD.md`. Both .bin files are exported
packages (`audiocraft_mmd.models.exported`): they load with `torch.load(weights_only=True)`.
"""
import hashlib
import json
from pathlib import Path
import typing as tp

import torch

from ..environment import CODEC_FILE, LM_FILE

PACKAGED_ROOT = Path(__file__).resolve().parent.parent / 'pretrained'
PACKAGED_MODELS = ('cpu-small',)  # names `get_pretrained` knows even before their files exist
DEFAULT_MODEL = 'cpu-small'
INFO_FILE = 'model.json'
CARD_FILE = 'MODEL_CARD.md'
MAX_PACKAGE_BYTES = 20 * 2 ** 20  # what the repository may hold per model


def package_folder(name: str, root: tp.Optional[tp.Union[str, Path]] = None) -> Path:
    return Path(root if root is not None else PACKAGED_ROOT) / name


def is_packaged(name: str, root: tp.Optional[tp.Union[str, Path]] = None) -> bool:
    """Whether `name` names a packaged model (a known name, or a folder under `root` with its files)."""
    if '/' in name or name.startswith(('.', '~')):
        return False
    return name in PACKAGED_MODELS or (package_folder(name, root) / LM_FILE).is_file()


def require_package(name: str, root: tp.Optional[tp.Union[str, Path]] = None) -> Path:
    """The folder of packaged model `name`; FileNotFoundError saying how to make it when files are missing."""
    folder = package_folder(name, root)
    missing = [f for f in (LM_FILE, CODEC_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The packaged model {name!r} is not in this installation: {folder} lacks {', '.join(missing)}. "
            f"It is written by `python -m audiocraft_mmd.export --package {name} --lm //sig/LM --codec //sig/CODEC` "
            "from the LM study (`make reproduce-lm`). Meanwhile use 'debug' (random weights), an export folder "
            "or //sig/SIG.")
    return folder


def _cast(weights: tp.Dict[str, torch.Tensor], dtype: torch.dtype) -> tp.Dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_package(name: str, lm: str, codec: tp.Optional[str] = None, root: tp.Optional[tp.Union[str, Path]] = None,
                  lm_dtype: str = 'float16', notes: tp.Optional[str] = None) -> Path:
    """Export LM `lm` and codec `codec` (any reference `exported.lm_package` / `compression_package` take) as
    packaged model `name` under `root` (default: the package's `pretrained/`). Refuses packages over MAX_PACKAGE_BYTES.

    Args:
        lm_dtype (str): 'float16' or 'float32' for the LM's floating-point weights.
        notes (str, optional): Markdown appended to the model card (e.g. the study's numbers).
    """
    import omegaconf
    from .exported import compression_package, lm_package
    lm_pkg, lm_path = lm_package(lm)
    lm_cfg = omegaconf.OmegaConf.create(lm_pkg['xp.cfg'])
    codec = codec or lm_cfg.get('compression_model_checkpoint')
    codec_pkg, _ = compression_package(codec)
    if 'pretrained' in codec_pkg:
        raise ValueError(f"{codec!r} is a reference to a hub codec, not weights: a packaged model must load offline")
    lm_pkg = {**lm_pkg, 'best_state': _cast(lm_pkg['best_state'], getattr(torch, lm_dtype))}
    folder = package_folder(name, root)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(lm_pkg, folder / LM_FILE)
    torch.save(codec_pkg, folder / CODEC_FILE)
    size = sum((folder / f).stat().st_size for f in (LM_FILE, CODEC_FILE))
    if size > MAX_PACKAGE_BYTES:
        for f in (LM_FILE, CODEC_FILE):
            (folder / f).unlink()
        raise ValueError(f"package {name!r} would hold {size / 2 ** 20:.1f} MiB > "
                         f"{MAX_PACKAGE_BYTES / 2 ** 20:.0f} MiB")
    info = {'name': name, 'lm': str(lm), 'codec': str(codec), 'lm_dtype': lm_dtype, 'bytes': size,
            'lm_parameters': sum(v.numel() for v in lm_pkg['best_state'].values()),
            'sha256': {f: _sha256(folder / f) for f in (LM_FILE, CODEC_FILE)}}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1) + '\n')
    (folder / CARD_FILE).write_text(model_card(info, lm_cfg, notes))
    return folder


def model_card(info: dict, lm_cfg: tp.Any, notes: tp.Optional[str] = None) -> str:
    """A short model card from the package info and the LM's training config."""
    lm = lm_cfg.transformer_lm
    conditioners = sorted((lm_cfg.get('conditioners') or {}).keys())
    lines = [f"# MusicGen-MMD `{info['name']}`", '',
             f"A {lm.num_layers}-layer, {lm.dim}-d transformer LM ({info['lm_parameters'] / 1e6:.2f} M parameters, "
             f"{lm_cfg.codebooks_pattern.modeling} pattern) over {lm.n_q} codebooks x {lm.card} entries of its codec, "
             f"{lm_cfg.sample_rate} Hz, trained on {lm_cfg.dataset.segment_duration} s segments for "
             f"{lm_cfg.optim.epochs} x {lm_cfg.optim.updates_per_epoch} updates (batch {lm_cfg.dataset.batch_size}).",
             f"Conditioning: {', '.join(conditioners) or 'none'} (classifier-free guidance "
             f"{lm_cfg.classifier_free_guidance.inference_coef}).",
             f"Sources: LM `{info['lm']}`, codec `{info['codec']}`; LM weights stored as {info['lm_dtype']}.", '',
             '## Data', '',
             "The project's music set (`python -m audiocraft_mmd.data.prepare`): scores of music21's bundled corpus "
             "rendered with FluidSynth and General MIDI soundfonts (fluid-soundfont-gm and MuseScore General, "
             "both MIT), and excerpts of recorded game music from Debian packages (wesnoth-1.16-music, GPL-2+; "
             "fretsonfire-songs-muldjord, CC-BY-SA 3.0; fretsonfire-songs-sectoid, MIT-style permission notice), "
             "as their Debian copyright files state them; check them before redistributing generated audio.", '']
    if notes:
        lines += ['## Measurements', '', notes.strip(), '']
    return '\n'.join(lines)
