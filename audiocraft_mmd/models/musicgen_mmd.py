"""MusicGen-MMD: audiocraft's MusicGen generation API over our trained LMs and EnCodec-MMD codecs.

`MusicGenMMD.get_pretrained(name_or_path)` loads from:
- a local folder with `state_dict.bin` + `compression_state_dict.bin` (`python -m audiocraft_mmd.export`);
- `//sig/SIG`, the best state of a MusicGen XP in our Dora folder, its codec from the LM's
  `compression_model_checkpoint`;
- a hub id such as `facebook/musicgen-small` (needs a network, or the files in the local cache;
  offline, a clear error within seconds instead of minutes of retries);
- a packaged model name (default `'cpu-small'`): `audiocraft_mmd/pretrained/<name>/`, offline
  (`audiocraft_mmd.models.packaged`; a clear error when its files are not installed);
- `'debug'`: a tiny random model (random codec, 2-layer LM, download-free LUT text conditioner).

Differences from `audiocraft.models.MusicGen`, and why:
- `MusicGen.__init__` sets a default 18 s `extend_stride` and asserts it is shorter than the LM's
  training segment: any LM trained on segments of 18 s or less cannot be built. Here the default
  stride is 60% of the training segment (18 s for 30 s, as MusicGen) and the default duration is
  at most the training segment.
- Exports do not keep the number of codebooks the LM was trained on (`compression_model_n_q` is not
  in the LM's config unless set), so audiocraft's loader returns the codec with all its codebooks;
  here the codec is cut to the LM's `n_q`.
- Every file loads with `torch.load(weights_only=True)`, explicitly (audiocraft relies on torch's
  default); only solver checkpoints inside our Dora folder may load otherwise (`load_state`).
- `top_k` is clamped to the codebook size: `torch.topk` fails when k exceeds it (small codebooks).
- LMs conditioned on metadata fields (conditioner=metadata_lut: genre, instrument, key) generate from
  `generate_with_metadata([{'genre': 'folk', ...}])`, at any duration (past `max_duration` by audiocraft's
  extension, which needs the empty melody condition `with_null_melody`); `generate(descriptions)` fills the
  fields the LM conditions on and the descriptions lack with None (audiocraft raises a KeyError instead).
- `generate_with_chroma` refuses at once, naming the LM's conditions, when the LM has no melody conditioner.
  The conformance list (every generate method, at durations within and past `max_duration`) is
  `tests/test_musicgen_conformance.py`.
"""
import logging
import os
from pathlib import Path
import threading
import typing as tp

import omegaconf
import torch

from audiocraft.models import MusicGen
from audiocraft.models.genmodel import BaseGenModel

from ..environment import CHECKPOINT_NAME, CODEC_FILE, LM_FILE, SIG_PREFIX
from .packaged import DEFAULT_MODEL, is_packaged, require_package

logger = logging.getLogger(__name__)

HUB_HOST = 'huggingface.co'
HUB_PROBE_TIMEOUT = 3.0  # seconds; a hub id offline fails after at most this long


def _default_device(device: tp.Optional[tp.Union[str, torch.device]]) -> str:
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return str(device)


def lm_from_package(cfg: omegaconf.DictConfig, weights: dict, device: str = 'cpu'):
    """Build an LMModel from its training config and best state (same steps as audiocraft's
    `load_lm_model`, whose file loading relies on torch's default `weights_only`)."""
    from audiocraft.models import builders
    from audiocraft.models.loaders import _delete_param
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(cfg, resolve=False))
    cfg.device = str(device)
    cfg.dtype = 'float32' if cfg.device == 'cpu' else 'float16'
    # keys audiocraft's loader drops too: training-only options of the conditioners
    for key in ('conditioners.self_wav.chroma_stem.cache_path', 'conditioners.args.merge_text_conditions_p',
                'conditioners.args.drop_desc_p'):
        _delete_param(cfg, key)
    lm = builders.get_lm_model(cfg)
    lm.load_state_dict(weights)
    lm.eval()
    lm.cfg = cfg
    return lm


def _codec_from_package(pkg: dict, source: tp.Union[str, Path], device: str):
    from audiocraft.models import CompressionModel
    from .loaders import compression_model_from_state
    if 'pretrained' in pkg:  # an exported reference to a pretrained codec (e.g. facebook/encodec_32khz)
        return CompressionModel.get_pretrained(pkg['pretrained'], device=device)
    return compression_model_from_state(pkg, source, device)


def _check_pair(compression_model, lm, source: str):
    """The codec as the LM sees it: cut to the LM's codebooks, checked against it, and wrapped at the LM's
    `compression_model_volume` when it renormalizes (`fixed_volume`)."""
    from .fixed_volume import DEFAULT_VOLUME, for_language_model
    if compression_model.cardinality != lm.card:
        raise ValueError(f"{source}: the codec has {compression_model.cardinality} entries per codebook, "
                         f"the LM was trained on {lm.card}")
    if compression_model.total_codebooks < lm.num_codebooks:
        raise ValueError(f"{source}: the codec has {compression_model.total_codebooks} codebooks, "
                         f"the LM models {lm.num_codebooks}")
    compression_model.set_num_codebooks(lm.num_codebooks)
    cfg = getattr(lm, 'cfg', None) or {}
    return for_language_model(compression_model, cfg.get('compression_model_volume', None) or DEFAULT_VOLUME)


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub opens within `timeout` s (DNS included: run in a thread)."""
    import socket
    result: tp.List[bool] = []

    def probe():
        try:
            socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _hub_offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get('HF_HUB_OFFLINE', '').lower() in ('1', 'true', 'yes')


def _hub_cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache
    from audiocraft.models.loaders import get_audiocraft_cache_dir
    cache_dir = get_audiocraft_cache_dir()
    return all(isinstance(try_to_load_from_cache(name, filename, cache_dir=cache_dir), str)
               for filename in (LM_FILE, CODEC_FILE))


class MusicGenMMD(MusicGen):
    """MusicGen with loaders for our trained models (see the module docstring).

    Args:
        name (str): name of the model.
        compression_model (CompressionModel): the codec (tokenizer).
        lm (LMModel): the language model over its codes.
        max_duration (float, optional): longest audio generated in one pass (else the LM's training
            segment, from `lm.cfg`); longer generations are extended by `extend_stride`.
    """
    def __init__(self, name: str, compression_model, lm, max_duration: tp.Optional[float] = None):
        # Skip MusicGen.__init__: its `set_generation_params(duration=15)` keeps the 18 s default
        # extend_stride and asserts on LMs trained on segments <= 18 s.
        BaseGenModel.__init__(self, name, compression_model, lm, max_duration)
        self.set_generation_params(duration=min(15., self.max_duration))

    @staticmethod
    def get_pretrained(name: str = DEFAULT_MODEL, device: tp.Optional[tp.Union[str, torch.device]] = None,
                       folder: tp.Optional[tp.Union[str, Path]] = None) -> 'MusicGenMMD':
        """Load a model (see the module docstring for what `name` may be).

        Args:
            name (str): a packaged model name (default), 'debug', a folder of an export, `//sig/SIG`, or a hub id.
            device (str, optional): defaults to cuda when available.
            folder (str or Path, optional): where packaged models live (default: the package's `pretrained/`).
        """
        device = _default_device(device)
        name = str(name)
        if name == 'debug':
            return build_debug_model(device=device)
        if is_packaged(name, folder):
            model = MusicGenMMD._from_folder(require_package(name, folder), device)
            model.name = name
            return model
        if name.startswith(SIG_PREFIX):
            return MusicGenMMD._from_checkpoint(name, device)
        path = Path(name).expanduser()
        if path.is_dir() and (path / LM_FILE).exists():
            return MusicGenMMD._from_folder(path, device)
        if path.exists():
            if path.is_dir() and (path / CHECKPOINT_NAME).exists():
                return MusicGenMMD._from_checkpoint(str(path), device)
            raise FileNotFoundError(f"{path} is neither an export folder (with {LM_FILE} and {CODEC_FILE}) nor "
                                    "an XP folder (with checkpoint.th)")
        if name.startswith(('.', '/', '~')) or name.count('/') != 1:
            raise FileNotFoundError(f"No MusicGen model at {name!r}: not 'debug', //sig/SIG, an existing folder "
                                    "or a hub id such as facebook/musicgen-small")
        return MusicGenMMD._from_hub(name, device)

    @staticmethod
    def _from_folder(path: Path, device: str) -> 'MusicGenMMD':
        from ..compat.checkpoints import checkpoint_config
        lm_pkg = torch.load(path / LM_FILE, map_location='cpu', weights_only=True)
        codec_file = path / CODEC_FILE
        if not codec_file.exists():
            raise FileNotFoundError(f"{codec_file} is missing: an export folder holds {LM_FILE} and {CODEC_FILE}")
        codec_pkg = torch.load(codec_file, map_location='cpu', weights_only=True)
        lm = lm_from_package(checkpoint_config(lm_pkg, path / LM_FILE), lm_pkg['best_state'], device)
        compression_model = _codec_from_package(codec_pkg, codec_file, device)
        compression_model = _check_pair(compression_model, lm, str(path))
        return MusicGenMMD(str(path), compression_model, lm)

    @staticmethod
    def _from_checkpoint(ref: str, device: str) -> 'MusicGenMMD':
        from .exported import compression_package, lm_package
        lm_pkg, lm_path = lm_package(ref)
        cfg = omegaconf.OmegaConf.create(lm_pkg['xp.cfg'])
        lm = lm_from_package(cfg, lm_pkg['best_state'], device)
        codec_pkg, codec_source = compression_package(cfg.compression_model_checkpoint)
        compression_model = _codec_from_package(codec_pkg, codec_source, device)
        compression_model = _check_pair(compression_model, lm, ref)
        return MusicGenMMD(ref, compression_model, lm)

    @staticmethod
    def _from_hub(name: str, device: str) -> 'MusicGenMMD':
        cached = _hub_cached(name)
        if not cached and (_hub_offline() or not _hub_reachable()):
            why = "HF_HUB_OFFLINE is set" if _hub_offline() else f"{HUB_HOST} is unreachable"
            raise RuntimeError(f"Cannot load the pretrained MusicGen {name!r}: {why} and its files are not in the "
                               "local Hugging Face cache. Use a local export folder, //sig/SIG or 'debug' instead.")
        model = MusicGen.get_pretrained(name, device=device)
        compression_model = model.compression_model
        return MusicGenMMD(name, compression_model, model.lm, max_duration=model.max_duration)

    def text_conditions(self) -> tp.List[str]:
        """Names of the text attributes the LM conditions on (e.g. ['description'] or ['genre', ...])."""
        return sorted(self.lm.condition_provider.text_conditions)

    def metadata_attributes(self, metadata: tp.Sequence[tp.Mapping[str, tp.Any]]) -> list:
        """ConditioningAttributes from metadata dicts (sidecar JSON fields), preprocessed as audiocraft's
        MusicDataset does (`MusicInfo.attribute_getter`: keywords lower-cased, lists joined); fields the
        LM does not condition on are ignored, missing ones are the null condition."""
        from audiocraft.data.music_dataset import MusicInfo
        from audiocraft.modules.conditioners import ConditioningAttributes
        attributes = []
        for meta in metadata:
            text: tp.Dict[str, tp.Optional[str]] = {}
            for name in self.text_conditions():
                value, getter = meta.get(name), MusicInfo.attribute_getter(name)
                value = getter(value) if getter is not None and value is not None else value
                text[name] = ' '.join(value) if isinstance(value, list) else value
            attributes.append(ConditioningAttributes(text=text))
        return attributes

    def generate_with_metadata(self, metadata: tp.Sequence[tp.Mapping[str, tp.Any]], progress: bool = False,
                               return_tokens: bool = False):
        """Generate one clip per metadata dict (e.g. `{'genre': 'folk', 'instrument': 'piano', 'key': 'A major'}`).

        Returns:
            audio [B, C, T] (and tokens [B, K, frames] with `return_tokens`).
        """
        attributes = [with_null_melody(a, self.device, self.sample_rate) for a in self.metadata_attributes(metadata)]
        tokens = self._generate_tokens(attributes, None, progress)
        audio = self.generate_audio(tokens)
        return (audio, tokens) if return_tokens else audio

    def generate_with_chroma(self, descriptions, melody_wavs, melody_sample_rate: int, progress: bool = False,
                             return_tokens: bool = False):
        """Melody conditioning needs a chroma conditioner (`self_wav`, MusicGen-melody); LMs without one refuse
        before any audio is processed (audiocraft raises the same error after converting the melodies)."""
        if 'self_wav' not in self.lm.condition_provider.conditioners:
            raise RuntimeError(f"{self.name}: this LM has no melody (chroma) conditioner, it conditions on "
                               f"{self.text_conditions()}; generate_with_chroma needs a melody model such as "
                               "facebook/musicgen-melody. Use generate, generate_with_metadata or "
                               "generate_continuation.")
        return super().generate_with_chroma(descriptions, melody_wavs, melody_sample_rate, progress, return_tokens)

    def _prepare_tokens_and_attributes(self, descriptions, prompt, melody_wavs=None):
        attributes, prompt_tokens = super()._prepare_tokens_and_attributes(descriptions, prompt, melody_wavs)
        for attribute in attributes:
            for name in self.text_conditions():
                attribute.text.setdefault(name, None)
        return attributes, prompt_tokens

    def set_generation_params(self, use_sampling: bool = True, top_k: int = 250,
                              top_p: float = 0.0, temperature: float = 1.0,
                              duration: tp.Optional[float] = None, cfg_coef: float = 3.0,
                              two_step_cfg: bool = False, extend_stride: tp.Optional[float] = None):
        """Set the generation parameters (defaults: the paper's top-250 sampling at temperature 1, CFG 3).

        Args:
            use_sampling (bool): sample, else argmax decoding.
            top_k (int): top-k sampling (clamped to the codebook size).
            top_p (float): top-p sampling when > 0 (then top_k is ignored).
            temperature (float): softmax temperature.
            duration (float, optional): seconds to generate; default: the longest single pass, `max_duration`.
            cfg_coef (float): classifier-free guidance coefficient.
            two_step_cfg (bool): two forward passes for CFG instead of a doubled batch.
            extend_stride (float, optional): beyond `max_duration`, seconds added per extension;
                default 60% of `max_duration` (MusicGen: 18 s of 30 s).
        """
        if extend_stride is None:
            extend_stride = 0.6 * self.max_duration
        if not 0 < extend_stride < self.max_duration:
            raise ValueError(f"extend_stride={extend_stride} must be in (0, max_duration={self.max_duration})")
        super().set_generation_params(
            use_sampling=use_sampling, top_k=min(int(top_k), int(self.lm.card)), top_p=top_p,
            temperature=temperature, duration=self.max_duration if duration is None else duration,
            cfg_coef=cfg_coef, two_step_cfg=two_step_cfg, extend_stride=extend_stride)


def with_null_melody(attributes, device, sample_rate: int):
    """`attributes` with the empty melody condition that audiocraft's `_prepare_tokens_and_attributes` gives
    every description: its long-generation loop reads `attr.wav['self_wav']` of every attribute (a KeyError
    past `max_duration` without it), and skips a melody of length 0."""
    from audiocraft.modules.conditioners import WavCondition
    attributes.wav.setdefault('self_wav', WavCondition(torch.zeros((1, 1, 1), device=device),
                                                       torch.tensor([0], device=device), [sample_rate], [None], [0.]))
    return attributes


def build_debug_lm(pattern: str = 'delay', n_q: int = 4, card: int = 400, dim: int = 16,
                   num_layers: int = 2, device: str = 'cpu', conditions: tp.Sequence[str] = ('description',)):
    """A tiny random LM with a download-free text conditioner: a LUT over whole descriptions with the
    `noop` tokenizer (audiocraft's debug LM uses the `whitespace` tokenizer, which needs spacy).

    Args:
        pattern (str): 'delay' (T + K - 1 steps for T frames) or 'unroll' (flatten: K * T steps).
        conditions: text attributes, each a LUT conditioner (('genre', 'instrument', 'key'): as metadata_lut).
    """
    from audiocraft.models.lm import LMModel
    from audiocraft.modules.codebooks_patterns import DelayedPatternProvider, UnrolledPatternProvider
    from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider, LUTConditioner
    if pattern == 'delay':
        provider = DelayedPatternProvider(n_q=n_q, delays=list(range(n_q)))
    elif pattern == 'unroll':
        provider = UnrolledPatternProvider(n_q=n_q, flattening=list(range(n_q)), delays=[0] * n_q)
    else:
        raise ValueError(f"pattern must be 'delay' or 'unroll', got {pattern!r}")
    conditioners = {name: LUTConditioner(n_bins=256, dim=dim, output_dim=dim, tokenizer='noop') for name in conditions}
    fuser = ConditionFuser({'cross': list(conditions), 'prepend': [], 'sum': [], 'input_interpolate': []})
    lm = LMModel(provider, ConditioningProvider(conditioners, device=device), fuser, n_q=n_q, card=card,
                 dim=dim, num_heads=4, num_layers=num_layers, cross_attention=True, causal=True, cfg_coef=3.0)
    return lm.to(device).eval()


def build_debug_model(pattern: str = 'delay', device: str = 'cpu', max_duration: float = 30.,
                      conditions: tp.Sequence[str] = ('description',)) -> MusicGenMMD:
    """A tiny random MusicGenMMD (audiocraft's debug codec: 32 kHz, 25 Hz, 4 x 400 entries) for tests
    and demos; `pattern` and `conditions` as in `build_debug_lm`."""
    from audiocraft.models.builders import get_debug_compression_model
    compression_model = get_debug_compression_model(device)
    lm = build_debug_lm(pattern=pattern, n_q=compression_model.num_codebooks,
                        card=compression_model.cardinality, device=device, conditions=conditions)
    return MusicGenMMD(f'debug-{pattern}', compression_model, lm, max_duration=max_duration)
