"""Compression models from a config, with our quantizers and codecs registered beside audiocraft's.

audiocraft's `models.builders.get_compression_model` looks quantizers up in a fixed dict
(`no_quant`, `rvq`) and knows one compression model (`encodec`). Our solvers and loaders call
`get_compression_model` here instead: a config with `encodec.quantizer: pvq` builds an EnCodec with
our `ProductVectorQuantizer` (kwargs from the top-level `pvq` block, audiocraft's convention), one
with `compression_model: dac` builds DAC (`dac_codec.py`, kwargs from the `dac` block); every other
config goes to audiocraft's builder unchanged (same modules, same order of random draws). Nothing of
audiocraft is patched.
"""
import math
import typing as tp

import omegaconf

from ..config_validation import is_int, require

# quantizer name -> where it is built
AUDIOCRAFT_QUANTIZERS = ('rvq', 'no_quant')
OUR_QUANTIZERS = ('pvq',)
QUANTIZERS = AUDIOCRAFT_QUANTIZERS + OUR_QUANTIZERS
COMPRESSION_MODELS = ('encodec', 'dac')
PVQ_KEYS = ('n_q', 'bins', 'dropout', 'decay', 'kmeans_init', 'kmeans_iters', 'threshold_ema_dead_code')


def is_dac(cfg: omegaconf.DictConfig) -> bool:
    """Whether the config describes a DAC codec (`compression_model: dac`)."""
    return cfg.get('compression_model', 'encodec') == 'dac'


def quantizer_name(cfg: omegaconf.DictConfig) -> str:
    """The quantizer a compression config asks for: `encodec.quantizer`, or `dac` for a DAC codec (DAC's own
    residual quantizer, block `dac`)."""
    return 'dac' if is_dac(cfg) else cfg.get('encodec', {}).get('quantizer', 'rvq')


def has_codebooks(cfg: omegaconf.DictConfig) -> bool:
    """False for `encodec.quantizer=no_quant` (audiocraft's DummyQuantizer: the decoder gets the latent itself, a
    reconstruction ceiling for the architecture), which has no codes to count or make independent."""
    return quantizer_name(cfg) != 'no_quant'


def codebook_keys(cfg: omegaconf.DictConfig) -> tp.Tuple[str, str]:
    """Config keys of the number of codebooks and of their size: `rvq.n_q` / `rvq.bins` (or `pvq.*`), or
    `dac.n_codebooks` / `dac.codebook_size`."""
    if is_dac(cfg):
        return 'dac.n_codebooks', 'dac.codebook_size'
    name = quantizer_name(cfg)
    return f'{name}.n_q', f'{name}.bins'


def codebook_counts(cfg: omegaconf.DictConfig) -> tp.Tuple[tp.Optional[int], tp.Optional[int]]:
    """(number of codebooks, entries per codebook) of a compression config; None where the config has no value."""
    return tuple(omegaconf.OmegaConf.select(cfg, key, default=None) for key in codebook_keys(cfg))  # type: ignore


def hop_length(cfg: omegaconf.DictConfig) -> tp.Optional[int]:
    """Audio samples per codec frame (the product of the encoder's strides), or None if the config does not say."""
    rates = cfg.get('dac', {}).get('encoder_rates') if is_dac(cfg) else cfg.get('seanet', {}).get('ratios')
    return math.prod(rates) if rates else None


def validate_config(cfg: omegaconf.DictConfig) -> None:
    """Check `compression_model`, `encodec.quantizer`, the block of the quantizer or codec in use (`pvq`, `dac`)
    and `mmd.streams` against that quantizer's stream kinds; errors name the key and value."""
    kind = cfg.get('compression_model', 'encodec')
    require(kind in COMPRESSION_MODELS, 'compression_model', kind, f"must be one of {COMPRESSION_MODELS}")
    name = quantizer_name(cfg)
    if kind == 'dac':
        from .dac_codec import validate_dac_config  # imports audiocraft, not dac
        validate_dac_config(cfg)
    else:
        require(name in QUANTIZERS, 'encodec.quantizer', name, f"must be one of {QUANTIZERS}")
    if name == 'pvq':
        _validate_pvq(cfg.get('pvq'), cfg.get('seanet', {}).get('dimension'))
    if has_codebooks(cfg):
        from ..losses.mmd_config import check_streams  # the `mmd` block's owner, given this quantizer's kinds
        check_streams(cfg.get('mmd'), name, stream_kinds)


def stream_kinds(name: str) -> tp.Tuple[str, ...]:
    """The MMD stream kinds of the quantizer called `name` (`losses.streams.stream_kinds` of its class)."""
    from ..losses.streams import RVQ_STREAM_KINDS
    if name == 'dac':
        from .dac_codec import DACQuantizer
        return DACQuantizer.STREAM_KINDS
    if name == 'pvq':
        from ..quantization.product import ProductVectorQuantizer
        return ProductVectorQuantizer.STREAM_KINDS
    return RVQ_STREAM_KINDS


def _validate_pvq(block, dimension) -> None:
    require(block is not None, 'pvq', block, "encodec.quantizer=pvq needs a `pvq` block")
    unknown = sorted(set(block.keys()) - set(PVQ_KEYS))
    require(not unknown, 'pvq', unknown, f"unknown key(s); known keys: {list(PVQ_KEYS)}")
    require(isinstance(block.get('dropout'), bool), 'pvq.dropout', block.get('dropout'), "must be true or false")
    n_q = block.get('n_q')
    require(is_int(n_q) and n_q >= 1, 'pvq.n_q', n_q, "must be an integer >= 1")
    require(is_int(block.get('bins')) and block.bins >= 2, 'pvq.bins', block.get('bins'), "must be an integer >= 2")
    if is_int(dimension):
        require(dimension % n_q == 0, 'pvq.n_q', n_q,
                f"the latent dimension seanet.dimension={dimension} must split into n_q groups of equal size")


def get_quantizer(name: str, cfg: omegaconf.DictConfig, dimension: int):
    """A quantizer of latent dimension `dimension`, kwargs from the config block named `name`."""
    if name == 'pvq':
        from audiocraft.utils.utils import dict_from_config
        from ..quantization.product import ProductVectorQuantizer
        return ProductVectorQuantizer(dimension=dimension, **dict_from_config(cfg.pvq))
    from audiocraft.models import builders
    return builders.get_quantizer(name, cfg, dimension)


def get_compression_model(cfg: omegaconf.DictConfig):
    """A CompressionModel from `cfg` (audiocraft's builder for audiocraft's quantizers)."""
    if is_dac(cfg):
        from .dac_codec import dac_from_config
        return dac_from_config(cfg).to(cfg.device)
    from audiocraft.models import builders
    if cfg.compression_model != 'encodec' or quantizer_name(cfg) in AUDIOCRAFT_QUANTIZERS:
        return builders.get_compression_model(cfg)
    from audiocraft.models.encodec import EncodecModel
    from audiocraft.utils.utils import dict_from_config
    kwargs = dict_from_config(cfg.encodec)
    encoder, decoder = builders.get_encodec_autoencoder(kwargs.pop('autoencoder'), cfg)
    quantizer = get_quantizer(kwargs.pop('quantizer'), cfg, encoder.dimension)
    frame_rate = kwargs['sample_rate'] // encoder.hop_length
    renormalize = kwargs.pop('renormalize', False)
    kwargs.pop('renorm', None)  # deprecated key audiocraft's builder drops too
    return EncodecModel(encoder, decoder, quantizer, frame_rate=frame_rate, renormalize=renormalize,
                        **kwargs).to(cfg.device)
