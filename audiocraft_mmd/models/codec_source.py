"""Where a codec to continue from lives, what architecture it has, and its weights in audiocraft's layout.

`resolve_source(ref)` accepts what `continue_from` of a compression solver may name:
- a hub id, as `//pretrained/ORG/NAME` or `ORG/NAME` (the releases, e.g. `facebook/encodec_32khz`, are in
  transformers' format): read from the Hugging Face cache, downloaded first when the hub is online;
- a local folder in transformers' format (`config.json` + weights, as `save_pretrained` or `hf download` write);
- `//sig/SIG`, an XP folder, a solver checkpoint or an exported codec file (audiocraft's layout).

It only looks at files (no weights are read), so the solver calls it with its config checks: a release missing
from the cache of an offline machine fails in seconds with an error naming the id, the cache folder searched, the
command that fetches it and the variable that points at a copied cache (`MissingRelease`).
"""
import dataclasses
import functools
from pathlib import Path
import typing as tp

import omegaconf

from ..compat import hf_encodec
from ..compat.checkpoints import checkpoint_config, load_state, resolve_checkpoint
from ..environment import CONFIG_DIR, PRETRAINED_PREFIX, REPO_ROOT, SIG_PREFIX
from .builders import codebook_keys, is_dac, quantizer_name

TRANSFORMERS = 'transformers'
AUDIOCRAFT = 'audiocraft'
HF_CONFIG = 'config.json'
HF_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')  # what transformers' from_pretrained reads, either one
BASE_MODEL_CONFIG = CONFIG_DIR / 'model' / 'encodec' / 'default.yaml'


class MissingRelease(FileNotFoundError):
    """A pretrained codec that is neither cached nor downloadable; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class CodecSource:
    """A codec to continue from. `location`: a hub id or folder (transformers), a checkpoint file (audiocraft)."""
    ref: str
    kind: str
    location: str

    def architecture(self) -> tp.Dict[str, tp.Any]:
        """Its model config as {dotted config key: value} (only the keys that define the architecture); read once
        per file version (the config checks and the solver both ask)."""
        path = Path(self.location) / HF_CONFIG if self.kind == TRANSFORMERS else Path(self.location)
        return dict(_architecture(self.kind, str(path), path.stat().st_mtime_ns))

    def weights(self, target: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
        """Its weights in audiocraft's layout, checked against `target` (the state dict of the model to load)."""
        if self.kind == TRANSFORMERS:
            from transformers import EncodecModel
            hf_model = EncodecModel.from_pretrained(self.location)
            return hf_encodec.to_audiocraft_state(hf_model.state_dict(), target)
        from .exported import best_weights
        return best_weights(load_state(self.location), Path(self.location))


@functools.lru_cache(maxsize=8)
def _architecture(kind: str, path: str, mtime_ns: int) -> tp.Dict[str, tp.Any]:
    if kind == TRANSFORMERS:
        from transformers import EncodecConfig
        return hf_encodec.architecture(EncodecConfig.from_pretrained(Path(path).parent))
    return audiocraft_architecture(checkpoint_config(load_state(path), path))


def audiocraft_architecture(cfg: omegaconf.DictConfig) -> tp.Dict[str, tp.Any]:
    """The architecture keys of an audiocraft-layout config (ours): rate, channels, model kind, the autoencoder
    blocks and the codebook counts (training settings such as the RVQ's EMA decay are not architecture)."""
    keys = ['compression_model', 'sample_rate', 'channels', *codebook_keys(cfg)]
    arch = {key: omegaconf.OmegaConf.select(cfg, key, default=None) for key in keys}
    arch['compression_model'] = arch['compression_model'] or 'encodec'
    if not is_dac(cfg):
        arch['encodec.quantizer'] = quantizer_name(cfg)
        for block in ('encodec', 'seanet'):
            container = omegaconf.OmegaConf.to_container(cfg[block], resolve=True)
            arch.update(_flatten(container, block))
    return arch


def _flatten(node: tp.Any, prefix: str) -> tp.Dict[str, tp.Any]:
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    flat: tp.Dict[str, tp.Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f'{prefix}.{key}'))
    return flat


def model_config(arch: tp.Mapping[str, tp.Any], device: str = 'cpu') -> omegaconf.DictConfig:
    """A model config of `arch` over our EnCodec defaults (`config/model/encodec/default.yaml`)."""
    cfg = omegaconf.OmegaConf.load(BASE_MODEL_CONFIG)
    with omegaconf.open_dict(cfg):
        cfg.device = device
        for key, value in arch.items():
            omegaconf.OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg


def local_path(name: str) -> Path:
    """A path as the user typed it: relative to the folder `dora run` started in (Dora and hydra change the working
    directory to the XP folder), or to the working directory outside Dora; a relative one found in neither is read
    from the repository (the packaged codecs are named relative to it)."""
    from dora.git_save import to_absolute_path
    path = Path(to_absolute_path(Path(name).expanduser()))
    if not Path(name).is_absolute() and not path.exists() and (REPO_ROOT / name).exists():
        return REPO_ROOT / name
    return path


def hub_id(ref: str) -> tp.Optional[str]:
    """The hub id `ref` names (`//pretrained/ORG/NAME` or `ORG/NAME` that is no local path), else None."""
    name = ref[len(PRETRAINED_PREFIX):] if ref.startswith(PRETRAINED_PREFIX) else ref
    if ref.startswith(SIG_PREFIX) or local_path(name).exists() or name.startswith(('.', '/', '~')):
        return None
    return name if name.count('/') == 1 else None


def resolve_source(ref: tp.Union[str, Path]) -> CodecSource:
    """The CodecSource `ref` names (see the module docstring); raises MissingRelease / FileNotFoundError."""
    ref = str(ref)
    repo_id = hub_id(ref)
    if repo_id is not None:
        return CodecSource(ref, TRANSFORMERS, str(hub_folder(repo_id, ref)))
    name = ref[len(PRETRAINED_PREFIX):] if ref.startswith(PRETRAINED_PREFIX) else ref
    if name.startswith('dac_'):
        raise ValueError(f"{ref!r} is a DAC release: audiocraft wraps it for inference only (its quantizer and "
                         "decoder are DAC's own package); fine-tune an EnCodec release or one of our codecs")
    path = local_path(name)
    folder = path.parent if path.name == HF_CONFIG or path.suffix == '.safetensors' else path
    if (folder / HF_CONFIG).is_file():
        return CodecSource(ref, TRANSFORMERS, str(folder))
    if ref.startswith(PRETRAINED_PREFIX) and not path.exists():
        raise FileNotFoundError(f"continue_from={ref!r}: {name!r} is neither a hub id (ORG/NAME) nor a local path")
    return CodecSource(ref, AUDIOCRAFT, str(path if path.is_file() else resolve_checkpoint(
        ref if ref.startswith(SIG_PREFIX) else path)))


def hub_folder(repo_id: str, ref: str) -> Path:
    """The snapshot folder of `repo_id` in the Hugging Face cache, downloaded first when the hub is reachable."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    config = try_to_load_from_cache(repo_id, HF_CONFIG)
    cached_weights = [try_to_load_from_cache(repo_id, name) for name in HF_WEIGHTS]
    if isinstance(config, str) and any(isinstance(path, str) for path in cached_weights):
        return Path(config).parent
    if constants.is_offline_mode():
        raise MissingRelease(missing_release_message(repo_id, ref, "the hub is offline (HF_HUB_OFFLINE=1)"))
    try:
        config = hf_hub_download(repo_id, HF_CONFIG)
        for name in HF_WEIGHTS:
            try:
                hf_hub_download(repo_id, name)
                break
            except Exception as exc:  # noqa: BLE001 (the release may hold either weights file)
                last = exc
        else:
            raise last
    except Exception as exc:  # huggingface_hub raises many kinds when the network is unreachable
        raise MissingRelease(missing_release_message(repo_id, ref, f"downloading it failed ({type(exc).__name__}: "
                                                     f"{str(exc).splitlines()[0] if str(exc) else ''})")) from exc
    return Path(config).parent


def missing_release_message(repo_id: str, ref: str, why: str, what: str = 'codec') -> str:
    from huggingface_hub import constants
    local = ("A local copy in transformers' format also works: continue_from=/path/to/folder." if what == 'codec'
             else "A local copy of its files also works: continue_from=//pretrained//path/to/folder.")
    return (f"The pretrained {what} {repo_id!r} (continue_from={ref}) is not in the Hugging Face cache "
            f"{constants.HF_HUB_CACHE} and {why}. On a machine with network, fetch it with "
            f"`hf download {repo_id}` (huggingface_hub >= 0.34; older: `huggingface-cli download {repo_id}`), "
            "copy that machine's cache folder here and point HF_HUB_CACHE at it (or HF_HOME at its parent: the "
            f"cache is HF_HOME/hub). {local}")


def load_source_model(source: CodecSource, device: str = 'cpu'):
    """An EnCodec (audiocraft's RVQ or our PVQ; not DAC) with the architecture and weights of `source`, in eval mode."""
    from .builders import get_compression_model
    model = get_compression_model(model_config(source.architecture(), device))
    model.load_state_dict(source.weights(model.state_dict()))
    return model.to(device).eval()
