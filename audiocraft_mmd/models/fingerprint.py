"""Fingerprints of what a record's numbers depend on beyond its config: the weights, and the platform.

A Dora signature names a config. On CPU the same config does not give the same weights on another machine (docs/
lm_study: a retrained trunk measured TC 4.611 against 4.581; the demo codec trained with the kernels capped at
AVX2 differs from the AVX-512 one), so a study that reuses a codec's records checks the weights themselves:
sha256 over every tensor's name, dtype, shape and bytes, in sorted name order; and reports record the platform.
"""
import hashlib
import os
from pathlib import Path
import platform
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
    from .loaders import model_weights
    return state_fingerprint(model_weights(load_state(checkpoint), checkpoint))


def fingerprint_field(record: tp.Mapping[str, tp.Any]) -> tp.Dict[str, str]:
    """{'weights_sha256': ...} of a codec record that has one, else {} (records written before it existed)."""
    return {'weights_sha256': record['weights_sha256']} if record.get('weights_sha256') else {}


# Environment variables that cap the instruction set of torch's kernels, MKL and oneDNN.
ISA_VARIABLES = ('ATEN_CPU_CAPABILITY', 'MKL_ENABLE_INSTRUCTIONS', 'MKL_CBWR', 'ONEDNN_MAX_CPU_ISA')


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (a name like 'AMD EPYC' hides the generation)."""
    fields = {}
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            key, _, value = line.partition(':')
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    return f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def platform_fingerprint() -> tp.Dict[str, tp.Any]:
    """The CPU, torch and the instruction set its kernels dispatch to, with any cap set in the environment."""
    import torch.backends.cpu
    return {'cpu': cpu_model(), 'torch': torch.__version__,
            'cpu_capability': torch.backends.cpu.get_cpu_capability(),
            'isa_caps': {k: os.environ[k] for k in ISA_VARIABLES if k in os.environ}}
