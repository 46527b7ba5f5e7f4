"""Continuing a released MusicGen LM on another codec's tokens: `continue_from` and the `lm_finetune` block.

`continue_from=//pretrained/NAME` names an LM in audiocraft's release layout (`state_dict.bin`: `xp.cfg` as yaml
text and the weights in `best_state`): a hub id (`facebook/musicgen-small`, from the Hugging Face cache offline) or
a local folder / file. The tokenizer is `compression_model_checkpoint` (e.g. the fine-tuned codec, `//sig/SIG`),
whose codebook count and size must be the release's.

Keys (configs written before this block have none: the defaults keep their behaviour and signatures):
- `lm_finetune.architecture`: `config` (default: audiocraft's behaviour, the config must match the weights) or
  `checkpoint`: the release's `transformer_lm` and `codebooks_pattern` blocks replace the config's, so no one has to
  guess the release's LM keys.
- `lm_finetune.conditioner`: which text conditioner the continued LM has.
  - `release`: the release's (`conditioners`, `fuser`, `classifier_free_guidance`, `attribute_dropout`), weights
    included. musicgen-small's is T5 (t5-base): a hub download, so offline it must already be in the cache
    (checked at start; the error says so).
  - `config`: the config's own conditioner (e.g. `conditioner=lut_debug`, download-free) replaces the release's; its
    weights start fresh, every other weight (embeddings, transformer, cross-attention, heads) continues.
  - `auto` (the finetune configs' value): `release` when everything it needs is in the cache, else `config`
    (logged). A LUT over descriptions is not T5: text prompts mean what the new conditioner learns from the data.
"""
import dataclasses
import functools
import logging
from pathlib import Path
import typing as tp

import omegaconf

from ..config_validation import ConfigError, parse_choices, require
from ..environment import LM_FILE, PRETRAINED_PREFIX
from .finetune import ARCHITECTURES  # the codec's choices: from the config, or taken from the release

logger = logging.getLogger(__name__)
CONDITIONERS = ('release', 'config', 'auto')
ARCHITECTURE_BLOCKS = ('transformer_lm', 'codebooks_pattern')
CONDITIONER_BLOCKS = ('conditioners', 'fuser', 'classifier_free_guidance', 'attribute_dropout')
CONDITIONER_PREFIX = 'condition_provider.'  # the conditioners' weights in an LM state dict


@dataclasses.dataclass(frozen=True)
class LMFinetuneConfig:
    architecture: str = 'config'
    conditioner: str = 'release'
    CHOICES: tp.ClassVar[dict] = {'architecture': ARCHITECTURES, 'conditioner': CONDITIONERS}

    @classmethod
    def parse(cls, cfg: omegaconf.DictConfig) -> 'LMFinetuneConfig':
        return parse_choices(cls, cfg.get('lm_finetune'), 'lm_finetune')


def release_name(cfg: omegaconf.DictConfig) -> tp.Optional[str]:
    """NAME of `continue_from=//pretrained/NAME`, else None (other sources are audiocraft's checkpoints)."""
    ref = cfg.get('continue_from') or ''
    return ref[len(PRETRAINED_PREFIX):] if ref.startswith(PRETRAINED_PREFIX) else None


def release_file(name: str) -> Path:
    """The `state_dict.bin` of a released LM: a file, a folder holding it, or a hub id (the cache offline)."""
    from ..models.codec_source import MissingRelease, local_path, missing_release_message
    path = local_path(name)
    if path.is_file():
        return path
    if path.is_dir():
        require((path / LM_FILE).is_file(), 'continue_from', name, f"the folder has no {LM_FILE}")
        return path / LM_FILE
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    cached = try_to_load_from_cache(name, LM_FILE)
    if isinstance(cached, str):
        return Path(cached)
    if constants.is_offline_mode():
        raise MissingRelease(missing_release_message(name, PRETRAINED_PREFIX + name, "the hub is offline "
                                                     "(HF_HUB_OFFLINE=1)", what='MusicGen LM'))
    try:
        return Path(hf_hub_download(name, LM_FILE))
    except Exception as exc:  # huggingface_hub raises many kinds when the network is unreachable
        raise MissingRelease(missing_release_message(name, PRETRAINED_PREFIX + name, f"downloading it failed "
                                                     f"({type(exc).__name__})", what='MusicGen LM')) from exc


def load_release(name: str) -> dict:
    """The release's package: {'best_state': LM weights, 'xp.cfg': DictConfig, ...} (weights-only load)."""
    import torch
    path = release_file(name)
    pkg = torch.load(path, map_location='cpu', weights_only=True)
    require('best_state' in pkg and 'xp.cfg' in pkg, 'continue_from', name,
            f"{path} is not an LM release (keys {sorted(pkg)[:6]}; expected best_state and xp.cfg)")
    cfg = pkg['xp.cfg']
    pkg['xp.cfg'] = omegaconf.OmegaConf.create(cfg) if isinstance(cfg, (str, dict)) else cfg
    return pkg


@functools.lru_cache(maxsize=4)
def _release_config(path: str, mtime_ns: int) -> str:
    return omegaconf.OmegaConf.to_yaml(load_release(path)['xp.cfg'])


def release_config(name: str) -> omegaconf.DictConfig:
    """The release's training config, read once per file version (the config checks and the solver both ask)."""
    path = release_file(name)
    return omegaconf.OmegaConf.create(_release_config(str(path), path.stat().st_mtime_ns))


def missing_downloads(conditioners: omegaconf.DictConfig) -> tp.List[str]:
    """What the conditioners need from the hub that the cache lacks (hub ids; 'model:<name>' when unsupported)."""
    from huggingface_hub import try_to_load_from_cache
    missing = []
    for name, spec in (conditioners or {}).items():
        if spec.get('model') == 't5':
            repo = spec.t5.name
            if not (isinstance(try_to_load_from_cache(repo, 'config.json'), str)
                    and isinstance(try_to_load_from_cache(repo, 'spiece.model'), str)):
                missing.append(repo)
        elif spec.get('model') not in ('lut',):
            missing.append(f"{name}: model {spec.get('model')!r}")
    return missing


def take_release_architecture(cfg: omegaconf.DictConfig) -> tp.Optional[str]:
    """Under `lm_finetune.architecture=checkpoint`, set the release's LM blocks (and, per `lm_finetune.conditioner`,
    its conditioner blocks) in `cfg`, in place; returns the conditioner kept ('release' or 'config'), None when
    `continue_from` names no release. Checked at solver start, before any data is loaded."""
    finetune = LMFinetuneConfig.parse(cfg)
    name = release_name(cfg)
    if name is None:
        return None
    release = release_config(name)
    for key in ('sample_rate', 'channels'):
        require(release.get(key) in (None, cfg.get(key)), key, cfg.get(key),
                f"continue_from={name} was trained at {key}={release.get(key)}")
    if finetune.architecture == 'checkpoint':
        _adopt(cfg, release, ARCHITECTURE_BLOCKS, name)
    kept = finetune.conditioner
    if kept != 'config':
        missing = missing_downloads(release.get('conditioners'))
        if missing and kept == 'release':
            raise ConfigError(f"Invalid config `lm_finetune.conditioner=release`: continue_from={name}'s conditioner "
                              f"needs {missing}, not in the Hugging Face cache (fetch them with `hf download ID` on a "
                              "machine with network and copy the cache, or use lm_finetune.conditioner=config)")
        kept = 'config' if missing else 'release'
        logger.info("lm_finetune: conditioner of %s (%s)", 'the config' if missing else name,
                    f"the release's needs {missing}, not cached" if missing else "release")
    if kept == 'release':
        _adopt(cfg, release, CONDITIONER_BLOCKS, name)
    omegaconf.OmegaConf.update(cfg, 'lm_finetune.conditioner', kept, force_add=True)
    return kept


def with_built_blocks(saved: dict, cfg: omegaconf.DictConfig) -> dict:
    """A checkpoint's `xp.cfg` (Dora's: the overrides) with the LM and conditioner blocks the model was built with
    (`cfg`, after `take_release_architecture`), so that the checkpoint and its export load alone."""
    out = omegaconf.OmegaConf.create(saved)
    for block in ARCHITECTURE_BLOCKS + CONDITIONER_BLOCKS + ('lm_finetune',):
        if block in cfg:
            omegaconf.OmegaConf.update(out, block, cfg[block], merge=False, force_add=True)
    return omegaconf.OmegaConf.to_container(out, resolve=False)


def _adopt(cfg: omegaconf.DictConfig, release: omegaconf.DictConfig, blocks: tp.Sequence[str], name: str) -> None:
    for block in blocks:
        if block in release:
            omegaconf.OmegaConf.update(cfg, block, release[block], merge=False, force_add=True)
            logger.info("lm_finetune: %s from %s", block, name)


def continued_state(release_state: tp.Mapping[str, tp.Any], model_state: tp.Mapping[str, tp.Any],
                    conditioner: str) -> tp.Dict[str, tp.Any]:
    """The LM weights to start from: the release's, with the model's own (fresh) conditioner weights when the
    conditioner was replaced. Other mismatches raise, naming the key (a config that does not fit the release)."""
    state = dict(release_state)
    if conditioner == 'config':
        state = {k: v for k, v in state.items() if not k.startswith(CONDITIONER_PREFIX)}
        state.update({k: v for k, v in model_state.items() if k.startswith(CONDITIONER_PREFIX)})
    missing, extra = sorted(set(model_state) - set(state)), sorted(set(state) - set(model_state))
    shapes = [k for k in state if k in model_state and tuple(state[k].shape) != tuple(model_state[k].shape)]
    if missing or extra or shapes:
        key = (missing or extra or shapes)[0]
        raise ConfigError(f"continue_from does not fit this LM at `{key}` (missing {missing[:3]}, unexpected "
                          f"{extra[:3]}, other shapes {shapes[:3]}): set lm_finetune.architecture=checkpoint, or "
                          "a compression_model_checkpoint with the release's codebook count and size")
    return state
