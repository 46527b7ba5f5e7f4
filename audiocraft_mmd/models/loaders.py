"""Load compression models from anything a user may point at.

`load_compression_model(ref)` accepts:
- `//sig/SIG`: the best state of a compression XP in our Dora folder;
- a folder of an XP, or a solver `checkpoint.th`;
- an exported file (`python -m audiocraft_mmd.export`, or audiocraft's `export_encodec`);
- `//pretrained/NAME` or a hub name such as `facebook/encodec_32khz` (from the Hugging Face cache, or the network);
- a folder in transformers' EnCodec format (`config.json` + weights), converted to audiocraft's EncodecModel
  (`compat/hf_encodec.py`).
"""
import logging
from pathlib import Path
import typing as tp

from ..compat.checkpoints import checkpoint_config, load_state, resolve_checkpoint
from ..environment import PRETRAINED_PREFIX, SIG_PREFIX
from ..solver_kinds import COMPRESSION_SOLVERS

logger = logging.getLogger(__name__)


def model_weights(state: dict, source: tp.Union[str, Path]) -> dict:
    """The model's state dict in a solver checkpoint's state or an exported package."""
    # exported packages hold the state dict itself under best_state; solver checkpoints hold {'model': ...}
    best = state.get('best_state') or {}
    weights = best if 'exported' in state else best.get('model')
    if not weights:
        raise ValueError(f"{source} holds no model weights (no best_state.model)")
    return weights


def compression_model_from_state(state: dict, source: tp.Union[str, Path], device: str = 'cpu'):
    """Build a CompressionModel from a solver checkpoint's state or an exported package."""
    from .builders import get_compression_model
    cfg = checkpoint_config(state, source)
    if cfg.get('solver') not in COMPRESSION_SOLVERS:
        raise ValueError(f"{source} was written by solver {cfg.get('solver')!r}, not a compression solver "
                         f"({COMPRESSION_SOLVERS})")
    cfg.device = str(device)
    model = get_compression_model(cfg)  # ours: knows our quantizers (pvq) as well as audiocraft's
    weights = model_weights(state, source)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"The weights in {source} do not match the model its config describes: {exc}") from exc
    return model.to(device).eval()


def load_compression_model(ref: tp.Union[str, Path], device: str = 'cpu'):
    """Load a compression model (see the module docstring for what `ref` may be)."""
    from audiocraft.models import CompressionModel
    ref = str(ref)
    if ref.startswith(PRETRAINED_PREFIX):
        return CompressionModel.get_pretrained(ref[len(PRETRAINED_PREFIX):], device=device)
    path = Path(ref).expanduser()
    if not ref.startswith(SIG_PREFIX) and not path.exists():
        if '/' in ref and not ref.startswith(('.', '/', '~')):
            return _from_hub(ref, device)
        raise FileNotFoundError(f"No compression model at {ref!r}: not a //sig/SIG, a file, a folder or a hub id")
    if path.is_dir() and (path / 'config.json').is_file():
        from .codec_source import load_source_model, resolve_source
        return load_source_model(resolve_source(path), device)
    if path.is_file() and 'exported' in (state := load_state(path)):
        return compression_model_from_state(state, path, device)
    checkpoint_path = resolve_checkpoint(ref)
    return compression_model_from_state(load_state(checkpoint_path), checkpoint_path, device)


def _from_hub(name: str, device: str):
    from audiocraft.models import CompressionModel
    try:
        return CompressionModel.get_pretrained(name, device=device)
    except Exception as exc:  # huggingface_hub raises many kinds offline
        raise RuntimeError(f"Could not fetch the pretrained compression model {name!r} from the hub "
                           f"(offline?): {exc}") from exc
