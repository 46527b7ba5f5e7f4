"""Our EnCodec(-MMD) codecs in transformers' format: `transformers.EncodecModel.from_pretrained(folder)` loads them.

Which codecs can be exported: an EnCodec with audiocraft's residual VQ (`encodec.quantizer=rvq`), SEANet with ELU,
weight norm and no final activation, and a power-of-two codebook size: the MMD-trained ones included (the MMD
changes the weights, not the architecture). Renormalizing codecs (`encodec.renormalize=true`) export too: transformers'
`normalize=True` divides by the same scale (RMS of the mono mix + 1e-8) and returns it from `encode`.

Which cannot, and why:
- PVQ (`encodec.quantizer=pvq`): each codebook quantizes its own D/K dimensions and the codewords are concatenated;
  transformers' EnCodec has only the residual VQ (every codebook over all D dimensions, codewords summed).
- DAC (`compression_model=dac`): another architecture (Snake activations, factorized L2-normalized codebooks with
  projections); transformers has a separate `DacModel` whose format this does not write.
- `encodec.quantizer=no_quant`: no codebooks, no tokens.
- A renormalizing codec as MusicGen-MMD uses it (`models/fixed_volume.py`: tokens without a scale, decoded at a fixed
  volume) has no transformers counterpart: transformers' `decode` needs `audio_scales`; pass the volume yourself.
"""
from pathlib import Path
import typing as tp

import omegaconf

from ..compat import hf_encodec
from .builders import quantizer_name
from .codec_source import audiocraft_architecture

_WHY_NOT = {
    'pvq': "its codebooks each quantize D/K dimensions (concatenated); transformers' EnCodec has only the residual VQ",
    'dac': "DAC is another architecture (Snake activations, factorized codebooks); transformers has its DacModel",
    'no_quant': "it has no codebooks (no tokens to decode)",
}


def check_exportable(cfg: omegaconf.DictConfig) -> tp.Dict[str, tp.Any]:
    """The transformers `EncodecConfig` kwargs of a codec config; raises UnsupportedCheckpoint saying why not."""
    name = quantizer_name(cfg)
    if name in _WHY_NOT:
        key = 'compression_model=dac' if name == 'dac' else f'encodec.quantizer={name}'
        raise hf_encodec.UnsupportedCheckpoint(f"This codec ({key}) cannot be exported in transformers' EnCodec "
                                               f"format: {_WHY_NOT[name]}. See docs/finetune.md.")
    arch = audiocraft_architecture(cfg)
    per_part = sorted(key for key in arch if key.startswith('seanet.encoder.') or (
        key.startswith('seanet.decoder.') and key.split('.')[-1] not in ('trim_right_ratio', 'final_activation',
                                                                         'final_activation_params')))
    if per_part:
        raise hf_encodec.UnsupportedCheckpoint(f"`{per_part[0]}`: transformers' EnCodec has one SEANet setting for "
                                               "encoder and decoder")
    bins = arch['rvq.bins']
    if bins & (bins - 1):
        raise hf_encodec.UnsupportedCheckpoint(f"`rvq.bins={bins}`: transformers' EnCodec needs a power of 2")
    return hf_encodec.config_kwargs(arch)


def to_transformers(cfg: omegaconf.DictConfig, weights: tp.Mapping[str, tp.Any]):
    """A transformers EncodecModel (eval mode) holding the codec of config `cfg` and state dict `weights`."""
    from transformers import EncodecConfig, EncodecModel
    model = EncodecModel(EncodecConfig(**check_exportable(cfg)))
    model.load_state_dict(hf_encodec.to_transformers_state(weights, model.state_dict().keys()))
    return model.eval()


def export_transformers(ref: tp.Union[str, Path], out: tp.Union[str, Path]) -> Path:
    """Write the codec `ref` (//sig/SIG, XP folder, checkpoint, exported file) to the folder `out` in transformers'
    format (`config.json` + `model.safetensors`). Returns `out`."""
    from .exported import compression_package
    package, path = compression_package(ref)
    if 'xp.cfg' not in package:
        raise ValueError(f"{ref!r} is a reference to a pretrained model ({package.get('pretrained')!r}), already "
                         "published in its own format")
    cfg = omegaconf.OmegaConf.create(package['xp.cfg'])
    out = Path(out)
    to_transformers(cfg, package['best_state']).save_pretrained(out)
    return out
