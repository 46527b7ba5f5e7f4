"""A fingerprint of a model's weights: which codec a record describes, not only which config trained it.

A Dora signature names a config. On CPU the same config does not give the same weights on another machine (docs/
lm_study: a retrained trunk measured TC 4.611 against 4.581), so a study that reuses a codec's records checks the
weights themselves: sha256 over every tensor's name, dtype, shape and bytes, in sorted name order.
"""
import hashlib
from pathlib import Path
import typing as tp

import torch


def state_fingerprint(state_dict: tp.Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) of a state dict; insertion order and storage layout do not matter, any bit of a value does."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
        # view as bytes: a bit-exact digest for every dtype (numpy knows no bfloat16)
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_fingerprint(checkpoint: tp.Union[str, Path]) -> str:
    """The fingerprint of the weights `load_compression_model` loads: a solver checkpoint's best model state, or an
    exported package's weights."""
    from ..compat.checkpoints import load_state
    state = load_state(checkpoint)
    best = state.get('best_state') or {}
    weights = best if 'exported' in state else best.get('model')
    if not weights:
        raise ValueError(f"{checkpoint} holds no model weights (no best_state.model)")
    return state_fingerprint(weights)
