"""musicnn (Pons & Serra, 2019), the pretrained music-tagging network of the `musicnn` wheel, in PyTorch.

The architecture follows the wheel's `models.py` (`build_musicnn`, MSD_musicnn / MTT_musicnn
configuration): on a log-mel patch [B, 187 frames, 96 bands],
- front end: input batch norm; "timbral" convolutions 7x38 and 7x67 (204 filters each, time padded
  by 3, valid in frequency) and "temporal" convolutions 128x1, 64x1, 32x1 (51 filters each, TF
  'same' padding); each conv -> ReLU -> batch norm -> max over frequency: 561 channels per frame;
- mid end: three 7-frame convolutions of 64 filters (ReLU, batch norm), the last two residual;
  front-end and mid-end outputs are concatenated: 753 channels per frame;
- back end: max and mean over time, interleaved per channel (TF flattens [753, 2]) into 1506 values,
  batch norm, dense 200 + ReLU, batch norm (the 200-d "penultimate" features), dense 50 (tag logits).
Batch norms use the stored moving statistics (eval mode, TF's epsilon 1e-3); dropout is inactive.

Weights: read at load time from the TF checkpoint bundle inside the installed `musicnn` wheel
(`musicnn/MSD_musicnn/.index` + `.data-00000-of-00001`) by `tf_checkpoint.CheckpointReader`, a
~150-line reader of the documented bundle format. Why not convert once and ship the weights: the
wheel is the single, pip-verified source of the numbers (no 3 MB binary copy in git that could drift
from it, no separate licence file to carry), and `make install` puts the wheel in every environment
anyway. Loading never falls back to random weights: a missing file, missing tensor or shape mismatch
raises `CheckpointError` naming the file and tensor (the wheel's own extractor wraps its restore in a
bare `except` and silently runs an untrained network). musicnn is (c) 2019 Music Technology Group,
Universitat Pompeu Fabra, ISC licence (the wheel's LICENSE.md); no code of it is copied here.
"""
import functools
import importlib.util
import typing as tp
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .tf_checkpoint import CheckpointError, CheckpointReader

MODELS = ('MSD_musicnn', 'MTT_musicnn')
N_FRAMES = 187
N_MELS = 96
EMBEDDING_DIM = 200
NUM_TAGS = 50
_BN_EPS = 1e-3

MTT_TAGS = (
    'guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano', 'ambient',
    'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals', 'no vocals',
    'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft', 'sitar', 'solo',
    'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal', 'beats', 'harp',
    'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral')
MSD_TAGS = (
    'rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s', 'alternative rock',
    'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul', 'indie rock', 'Mellow',
    'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies', 'blues', 'hard rock',
    'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop', '70s', 'party', 'country',
    'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal', 'Progressive rock', '60s', 'rnb',
    'indie pop', 'sad', 'House', 'happy')
TAGS = {'MSD_musicnn': MSD_TAGS, 'MTT_musicnn': MTT_TAGS}


class _ConvBlock(nn.Module):
    """conv -> ReLU -> batch norm, with TF's layout of the kernel [kh, kw, in, out] mapped to torch's."""
    def __init__(self, in_channels: int, out_channels: int, kernel: tp.Tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel)
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """The musicnn tagger. `forward(mel)` with mel [B, 187, 96] (log-compressed) returns
    (tag logits [B, 50], penultimate features [B, 200])."""
    def __init__(self):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=_BN_EPS)
        self.timbral = nn.ModuleList([_ConvBlock(1, 204, (7, int(0.4 * N_MELS))),
                                      _ConvBlock(1, 204, (7, int(0.7 * N_MELS)))])
        self.temporal = nn.ModuleList([_ConvBlock(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.midend = nn.ModuleList([_ConvBlock(1, 64, (7, 561))] + [_ConvBlock(1, 64, (7, 64)) for _ in range(2)])
        self.pool_bn = nn.BatchNorm1d(2 * 753, eps=_BN_EPS)
        self.dense = nn.Linear(2 * 753, EMBEDDING_DIM)
        self.dense_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=_BN_EPS)
        self.output = nn.Linear(EMBEDDING_DIM, NUM_TAGS)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """Per-frame mid-end features [B, T, 753] of a log-mel [B, T, 96]."""
        x = self.input_bn(mel.unsqueeze(1))  # [B, 1, T, F]
        frontend = []
        padded = F.pad(x, (0, 0, 3, 3))
        for block in self.timbral:
            frontend.append(block(padded).amax(dim=3))  # [B, C, T]
        for block in self.temporal:
            k = block.conv.kernel_size[0]
            frontend.append(block(F.pad(x, (0, 0, (k - 1) // 2, k // 2))).amax(dim=3))  # TF 'same' padding
        layers = [torch.cat(frontend, dim=1).transpose(1, 2)]  # [B, T, 561]
        for i, block in enumerate(self.midend):
            y = block(F.pad(layers[-1].unsqueeze(1), (0, 0, 3, 3)))  # [B, 64, T, 1]
            y = y.squeeze(3).transpose(1, 2)
            layers.append(y if i == 0 else y + layers[-1])
        return torch.cat(layers, dim=2)

    def forward(self, mel: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        assert mel.dim() == 3 and mel.shape[2] == N_MELS, f"expected a log-mel [B, T, {N_MELS}], got {mel.shape}"
        feats = self.features(mel)
        pooled = torch.stack([feats.amax(dim=1), feats.mean(dim=1)], dim=2).flatten(1)  # [B, 1506]
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return self.output(penultimate), penultimate


def checkpoint_dir(model: str) -> Path:
    """Folder of the TF checkpoint of `model` inside the installed `musicnn` wheel (no TF import)."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; available: {MODELS}")
    spec = importlib.util.find_spec('musicnn')
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("the `musicnn` wheel is not installed (its checkpoints hold the weights): "
                              "pip install --no-deps musicnn==0.1.0 (`make install` does it)")
    return Path(list(spec.submodule_search_locations)[0]) / model


def _tf_names() -> tp.Iterator[tp.Tuple[str, str, str]]:
    """(torch module path, TF conv/dense scope, TF batch-norm scope) in TF's layer creation order."""
    convs = [f'timbral.{i}' for i in range(2)] + [f'temporal.{i}' for i in range(3)] + [f'midend.{i}' for i in range(3)]
    for i, path in enumerate(convs):
        yield path, 'conv2d' + (f'_{i}' if i else ''), f'batch_normalization_{i + 1}'
    yield 'dense', 'dense', 'batch_normalization_10'
    yield 'output', 'dense_1', ''


def _bn_state(reader: CheckpointReader, scope: str, prefix: str, size: int) -> tp.Dict[str, torch.Tensor]:
    names = {'weight': 'gamma', 'bias': 'beta', 'running_mean': 'moving_mean', 'running_var': 'moving_variance'}
    return {f'{prefix}.{ours}': torch.from_numpy(reader.read(f'{scope}/{theirs}', (size,)))
            for ours, theirs in names.items()}


def load_state_dict_from_checkpoint(prefix: tp.Union[str, Path], net: Musicnn) -> tp.Dict[str, torch.Tensor]:
    """State dict for `net` from the TF bundle `prefix`, each tensor shape-checked against `net`."""
    reader = CheckpointReader(prefix)
    state = _bn_state(reader, 'batch_normalization', 'input_bn', 1)
    state.update(_bn_state(reader, 'batch_normalization_9', 'pool_bn', 2 * 753))
    for path, scope, bn_scope in _tf_names():
        module = net.get_submodule(path)
        layer = module.conv if isinstance(module, _ConvBlock) else module
        weight = layer.weight
        if isinstance(layer, nn.Conv2d):  # TF [kh, kw, in, out] -> torch [out, in, kh, kw]
            out_ch, in_ch, kh, kw = weight.shape
            kernel = reader.read(f'{scope}/kernel', (kh, kw, in_ch, out_ch))
            state[f'{path}.conv.weight'] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
            state[f'{path}.conv.bias'] = torch.from_numpy(reader.read(f'{scope}/bias', (weight.shape[0],)))
            state.update(_bn_state(reader, bn_scope, f'{path}.bn', weight.shape[0]))
        else:  # TF dense [in, out] -> torch [out, in]
            kernel = reader.read(f'{scope}/kernel', (weight.shape[1], weight.shape[0]))
            state[f'{path}.weight'] = torch.from_numpy(kernel).t().contiguous()
            state[f'{path}.bias'] = torch.from_numpy(reader.read(f'{scope}/bias', (weight.shape[0],)))
    state.update(_bn_state(reader, 'batch_normalization_10', 'dense_bn', EMBEDDING_DIM))
    return state


def load_musicnn(model: str = 'MSD_musicnn', prefix: tp.Optional[tp.Union[str, Path]] = None) -> Musicnn:
    """A pretrained musicnn in eval mode. `prefix`: a TF checkpoint prefix to read instead of the
    wheel's (`<folder>/` for musicnn's layout). Raises `CheckpointError` on any missing or
    mis-shaped tensor; every parameter and batch-norm statistic must come from the checkpoint."""
    net = Musicnn()
    if prefix is None:
        prefix = str(checkpoint_dir(model)) + '/'
    state = load_state_dict_from_checkpoint(prefix, net)
    expected = {k for k in net.state_dict() if not k.endswith('num_batches_tracked')}
    missing = expected - set(state)
    if missing:  # guards the name mapping itself: nothing may stay at its random initialization
        raise CheckpointError(f"no checkpoint tensor mapped to {sorted(missing)} (checkpoint {prefix})")
    net.load_state_dict(state, strict=False)
    return net.eval().requires_grad_(False)


@functools.lru_cache(maxsize=2)
def pretrained_musicnn(model: str = 'MSD_musicnn') -> Musicnn:
    """`load_musicnn(model)`, loaded once per process (shared: do not modify or train it)."""
    return load_musicnn(model)
