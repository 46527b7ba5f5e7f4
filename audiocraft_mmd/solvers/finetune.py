"""Continuing a compression model from a codec it did not train: the `finetune` block and `continue_from`.

`continue_from` may name a release (`//pretrained/facebook/encodec_32khz`, in transformers' format), a local
transformers folder, or one of our codecs (`//sig/SIG`, a checkpoint, an exported file): `models/codec_source.py`.
The source is resolved and its architecture read with the config checks, before any data is loaded, so an
offline machine without the release fails in seconds with an error that says how to get it. A run that resumes
its own checkpoint reads the architecture from that checkpoint instead (the source may be gone by then).

Keys (configs written before this block have none: the defaults keep their behaviour and signatures):
- `finetune.architecture`: `config` (default): the config's architecture keys must equal the source's, else the
  run is refused with an error naming the first key that differs; `checkpoint`: the source's architecture
  replaces the config's (the `encodec_mmd_finetune` configs), so no one has to guess the release's `model` keys.
- `finetune.trainable`: `all` (default) | `encoder`: codebooks and decoder stay bit-identical to the source's
  (`models/encoder_only.py`), so the tokens stay decodable by the released decoder.
"""
import dataclasses
import logging
import typing as tp

import omegaconf
from audiocraft.optim.ema import ModuleDictEMA, _get_named_tensors

from ..config_validation import ConfigError, parse_choices, require
from ..models.builders import is_dac, quantizer_name
from ..environment import CHECKPOINT_NAME
from ..models.codec_source import AUDIOCRAFT, CodecSource, resolve_source

logger = logging.getLogger(__name__)
ARCHITECTURES = ('config', 'checkpoint')
TRAINABLE = ('all', 'encoder')


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    architecture: str = 'config'
    trainable: str = 'all'
    CHOICES: tp.ClassVar[dict] = {'architecture': ARCHITECTURES, 'trainable': TRAINABLE}

    @classmethod
    def parse(cls, cfg: omegaconf.DictConfig) -> 'FinetuneConfig':
        return parse_choices(cls, cfg.get('finetune'), 'finetune')


def _plain(value: tp.Any) -> tp.Any:
    if isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
        return omegaconf.OmegaConf.to_container(value, resolve=True)
    return value


def mismatched_keys(cfg: omegaconf.DictConfig, arch: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """Architecture keys whose value in `cfg` differs from `arch`'s."""
    return [key for key, value in arch.items() if _plain(omegaconf.OmegaConf.select(cfg, key)) != value]


def take_source_architecture(cfg: omegaconf.DictConfig) -> tp.Optional[CodecSource]:
    """Check `finetune` and the `continue_from` source against `cfg`; under `finetune.architecture=checkpoint`, set
    the source's architecture keys in `cfg` (in place, logged). Returns the source (None without continue_from).
    Idempotent: the solver's own checks call it again on the adopted config."""
    finetune = FinetuneConfig.parse(cfg)
    ref = cfg.get('continue_from')
    if finetune.trainable == 'encoder':
        require(bool(ref), 'finetune.trainable', finetune.trainable, "needs continue_from (the codec whose decoder "
                "and codebooks are kept)")
        require(not is_dac(cfg) and quantizer_name(cfg) in ('rvq', 'pvq'), 'finetune.trainable', finetune.trainable,
                f"needs an EnCodec with codebooks (encodec.quantizer rvq or pvq), not {quantizer_name(cfg)!r}")
    if not ref:
        return None
    source = _own_checkpoint(ref) or resolve_source(ref)
    arch = source.architecture()
    mismatched = mismatched_keys(cfg, arch)
    if mismatched and finetune.architecture == 'config':
        key = mismatched[0]
        raise ConfigError(f"Invalid config `{key}={_plain(omegaconf.OmegaConf.select(cfg, key))!r}`: "
                          f"continue_from={ref} has {key}={arch[key]!r} ({len(mismatched)} architecture key(s) "
                          f"differ: {mismatched[:6]}). Set finetune.architecture=checkpoint (as "
                          "solver=compression/encodec_mmd_finetune does) to take the architecture from the checkpoint")
    with omegaconf.open_dict(cfg):
        for key in mismatched:
            logger.info("finetune: %s = %r from %s (config had %r)", key, arch[key], ref,
                        _plain(omegaconf.OmegaConf.select(cfg, key)))
            omegaconf.OmegaConf.update(cfg, key, arch[key], merge=False, force_add=True)
    return source


def _own_checkpoint(ref: str) -> tp.Optional[CodecSource]:
    """The checkpoint of the XP being run, when it has one: a resumed run ignores `continue_from` (audiocraft) and
    its own checkpoint holds the architecture it took, so resuming needs no access to the original source."""
    import dora
    try:
        folder = dora.get_xp().folder
    except RuntimeError:  # not inside an XP (a config checked on its own)
        return None
    path = folder / CHECKPOINT_NAME
    return CodecSource(ref, AUDIOCRAFT, str(path)) if path.is_file() else None


class FrozenAwareEMA(ModuleDictEMA):
    """audiocraft's ModuleDictEMA, whose average of frozen tensors stays the tensor itself, bit for bit.

    Args:
        frozen: {registered source name: state-dict names of its frozen tensors}.
    """
    def __init__(self, module_dict, frozen: tp.Mapping[str, tp.Set[str]], **kwargs):
        super().__init__(module_dict, **kwargs)
        self.frozen = frozen

    def step(self):
        super().step()
        for module_name, names in self.frozen.items():
            for key, val in _get_named_tensors(self.module_dict[module_name]):
                if key in names:
                    self.state[module_name][key].copy_(val.detach())
