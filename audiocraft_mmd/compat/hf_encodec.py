"""EnCodec weights in transformers' format (the hub releases) <-> audiocraft's `EncodecModel`.

What it replaces, and why: audiocraft 1.3.0's `CompressionSolver.load_from_pretrained` (used by
`continue_from=//pretrained/facebook/encodec_32khz`) loads a release through transformers' `EncodecModel` and
renames the keys of its `state_dict()` by string replacement. That converter predates torch's parametrized
weight norm: transformers 5.x keeps a normalized conv's weight as `conv.parametrizations.weight.original0/1`
(magnitude g, direction v), where audiocraft's convs (`torch.nn.utils.weight_norm`) keep `weight_g/weight_v`,
so the renamed state holds keys audiocraft's model does not have and the first restore raises
`KeyError: 'encoder.model.0.conv.conv.parametrizations.weight.original0'`. It also builds the training model from
the solver's config, so a config that differs from the release (padding mode, causality, widths) loads wrong or
fails on a shape.

Here one key mapping serves both directions (import for fine-tuning, export for transformers users), both
weight-norm spellings are read, and the architecture comes from the release's `config.json`
(`architecture`, as dotted keys of our config). g and v are copied as they are (same shapes in both libraries:
weight norm over dim 0), so the effective weights, the codes and the decoded audio are transformers' own
(tests/compat/test_hf_encodec.py).
"""
import math
import re
import typing as tp

import torch

# transformers' weight-norm spellings -> audiocraft's (torch.nn.utils.weight_norm)
_PARAM_NAMES = {
    'parametrizations.weight.original0': 'weight_g',
    'parametrizations.weight.original1': 'weight_v',
    'weight_g': 'weight_g',
    'weight_v': 'weight_v',
    'weight': 'weight',
    'bias': 'bias',
}
_CONV = re.compile(r'^(?P<module>.*?)\.?conv\.(?P<param>' + '|'.join(re.escape(p) for p in _PARAM_NAMES) + r')$')
_NORM = re.compile(r'^(?P<module>.*?)\.?norm\.(?P<param>weight|bias)$')
_CODEBOOK = re.compile(r'^quantizer\.layers\.(?P<index>\d+)\.codebook\.(?P<buffer>\w+)$')
_LAYER = re.compile(r'^(?P<part>encoder|decoder)\.layers\.(?P<index>\d+)\.(?P<rest>.+)$')


class UnsupportedCheckpoint(ValueError):
    """A transformers EnCodec checkpoint that audiocraft's EncodecModel cannot represent (names the config key)."""


def _join(*parts: str) -> str:
    return '.'.join(part for part in parts if part)


def audiocraft_key(hf_key: str, transposed: bool = False) -> str:
    """audiocraft's name of the transformers EnCodec state key `hf_key` (either weight-norm spelling);
    `transposed`: the key belongs to a transposed convolution (audiocraft calls it `convtr`)."""
    match = _CODEBOOK.match(hf_key)
    if match:
        return f"quantizer.vq.layers.{match['index']}._codebook.{match['buffer']}"
    match = _LAYER.match(hf_key)
    if not match:
        raise KeyError(f"Not an EnCodec state key of transformers' format: {hf_key!r}")
    prefix, rest = f"{match['part']}.model.{match['index']}", match['rest']
    conv = 'convtr' if transposed else 'conv'
    if rest.startswith('lstm.'):
        return _join(prefix, rest)
    if (found := _CONV.match(rest)):
        return _join(prefix, found['module'], conv, conv, _PARAM_NAMES[found['param']])
    if (found := _NORM.match(rest)):
        return _join(prefix, found['module'], conv, 'norm', found['param'])
    raise KeyError(f"Not an EnCodec state key of transformers' format: {hf_key!r}")


def key_mapping(hf_keys: tp.Iterable[str], audiocraft_keys: tp.Iterable[str]) -> tp.Dict[str, str]:
    """{transformers key: audiocraft key} for the keys of two models of one architecture. transformers names a
    transposed convolution like a plain one; which is which is read from the audiocraft model's own keys."""
    targets = set(audiocraft_keys)
    mapping = {}
    for key in hf_keys:
        name = audiocraft_key(key)
        if name not in targets and audiocraft_key(key, transposed=True) in targets:
            name = audiocraft_key(key, transposed=True)
        mapping[key] = name
    return mapping


def to_audiocraft_state(hf_state: tp.Mapping[str, torch.Tensor],
                        target: tp.Mapping[str, torch.Tensor]) -> tp.Dict[str, torch.Tensor]:
    """audiocraft state dict from a transformers EnCodec state dict, checked key by key and shape by shape against
    `target` (the state dict of the audiocraft model it is meant for); errors name the first key that differs."""
    mapping = key_mapping(hf_state, target)
    state = {mapping[key]: value for key, value in hf_state.items()}
    missing, extra = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or extra:
        raise UnsupportedCheckpoint(f"The transformers EnCodec weights do not match the audiocraft model: missing "
                                    f"{missing[:3]}, unexpected {extra[:3]} ({len(missing)}/{len(extra)} in all)")
    for key, value in state.items():
        if value.shape != target[key].shape:
            raise UnsupportedCheckpoint(f"Shape of {key} differs: {tuple(value.shape)} in the transformers "
                                        f"weights, {tuple(target[key].shape)} in the audiocraft model")
    return state


def to_transformers_state(state: tp.Mapping[str, torch.Tensor],
                          hf_keys: tp.Iterable[str]) -> tp.Dict[str, torch.Tensor]:
    """The transformers EnCodec state dict (keys `hf_keys`, any weight-norm spelling) of audiocraft's `state`."""
    mapping = key_mapping(hf_keys, state)
    missing = sorted(name for name in mapping.values() if name not in state)
    if missing:
        raise UnsupportedCheckpoint(f"The audiocraft model has no {missing[:3]} ({len(missing)} keys in all)")
    return {key: state[name] for key, name in mapping.items()}


# config.json keys of transformers' EncodecConfig -> dotted keys of our model config
_SAME_MEANING = {
    'sampling_rate': 'sample_rate',
    'audio_channels': 'channels',
    'use_causal_conv': 'encodec.causal',
    'normalize': 'encodec.renormalize',
    'hidden_size': 'seanet.dimension',
    'num_filters': 'seanet.n_filters',
    'num_residual_layers': 'seanet.n_residual_layers',
    'upsampling_ratios': 'seanet.ratios',
    'norm_type': 'seanet.norm',
    'kernel_size': 'seanet.kernel_size',
    'last_kernel_size': 'seanet.last_kernel_size',
    'residual_kernel_size': 'seanet.residual_kernel_size',
    'dilation_growth_rate': 'seanet.dilation_base',
    'pad_mode': 'seanet.pad_mode',
    'compress': 'seanet.compress',
    'num_lstm_layers': 'seanet.lstm',
    'trim_right_ratio': 'seanet.decoder.trim_right_ratio',
    'codebook_size': 'rvq.bins',
}
# What transformers' EnCodec hard-codes (ELU, weight norm without options, no final activation).
_FIXED = {
    'compression_model': 'encodec',
    'encodec.autoencoder': 'seanet',
    'encodec.quantizer': 'rvq',
    'seanet.activation': 'ELU',
    'seanet.activation_params.alpha': 1.0,
    'seanet.norm_params': {},
    'seanet.disable_norm_outer_blocks': 0,
    'seanet.decoder.final_activation': None,
    'seanet.decoder.final_activation_params': None,
}


def architecture(hf_config: tp.Any) -> tp.Dict[str, tp.Any]:
    """Our model config, as {dotted key: value}, of a transformers `EncodecConfig`; raises UnsupportedCheckpoint
    (naming the config.json key) for what audiocraft's EncodecModel cannot run."""
    if hf_config.chunk_length_s is not None:
        raise UnsupportedCheckpoint(f"config.json has chunk_length_s={hf_config.chunk_length_s}: audiocraft's "
                                    "EncodecModel encodes whole segments, not overlapping chunks (the 48 kHz release)")
    if hf_config.codebook_dim != hf_config.hidden_size:
        raise UnsupportedCheckpoint(f"config.json has codebook_dim={hf_config.codebook_dim} != hidden_size="
                                    f"{hf_config.hidden_size}: audiocraft's RVQ would add projections transformers "
                                    "does not have")
    arch = {ours: _plain(getattr(hf_config, theirs)) for theirs, ours in _SAME_MEANING.items()}
    arch.update(_FIXED)
    arch['seanet.true_skip'] = not hf_config.use_conv_shortcut
    arch['rvq.n_q'] = int(hf_config.num_quantizers)
    return arch


def _plain(value: tp.Any) -> tp.Any:
    return list(value) if isinstance(value, tuple) else value


def config_kwargs(arch: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """transformers `EncodecConfig` keyword arguments of an architecture (inverse of `architecture`; raises
    UnsupportedCheckpoint naming our config key where transformers' EnCodec cannot express it)."""
    for key, value in _FIXED.items():
        if arch.get(key) != value:
            raise UnsupportedCheckpoint(f"`{key}={arch.get(key)!r}`: transformers' EnCodec only has {value!r}")
    kwargs = {theirs: arch[ours] for theirs, ours in _SAME_MEANING.items()}
    kwargs['use_conv_shortcut'] = not arch['seanet.true_skip']
    kwargs['codebook_dim'] = arch['seanet.dimension']
    kwargs['target_bandwidths'] = [bandwidth(arch['rvq.n_q'], arch['rvq.bins'], arch['sample_rate'],
                                             math.prod(arch['seanet.ratios']))]
    return kwargs


def bandwidth(n_q: int, bins: int, sample_rate: int, hop: int) -> float:
    """The kbps that make transformers use `n_q` codebooks (its `num_quantizers` is
    floor(1000 * bandwidth / (frame_rate * bits))): the exact rate (2.2 for 4 x 2048 codes at 50 Hz), nudged up by
    1e-6 only where float rounding would floor it to n_q - 1."""
    per_codebook = math.ceil(sample_rate / hop) * math.ceil(math.log2(bins))
    kbps = n_q * per_codebook / 1000
    if int(1000 * kbps // per_codebook) != n_q or math.floor(kbps * 1000 / per_codebook) != n_q:
        kbps += 1e-6
    return kbps
