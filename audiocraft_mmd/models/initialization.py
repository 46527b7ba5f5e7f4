"""Signal-preserving initialization of SEANet (and DAC) encoders and decoders.

Why: with PyTorch's default conv init (kaiming-uniform with a = sqrt(5): weight variance 1 / (3 fan_in),
bias uniform in +-1/sqrt(fan_in)) each conv of a SEANet shrinks the input-dependent part of its
signal while its bias adds a constant. Through the 30 or so layers of encoder + decoder the constant
wins: measured on the CPU debug codec (n_filters 4), the decoder output's variation across inputs is
2e-5 of its RMS at init (`docs/codec_collapse.md`). Training then fits the constant, the gradient
reaching the codes is as small as their influence, and the codec collapses to one sound for every
input whatever the quantizer does. Small models suffer most (few input channels: large biases).

`preserve_signal_` re-draws every conv weight with variance 1 / fan_in (fan_in = in_channels * kernel,
divided by the stride for transposed convs, whose outputs each see in * kernel / stride inputs),
zeroes the biases, and scales the last conv of each residual branch by `residual_scale`, so a
residual block starts close to identity (as in Fixup / "zero-init residual"). Weight-normalized
convs get their direction `weight_v` re-drawn and their gain `weight_g` set to its norm, so the
effective weight is the drawn one. LSTMs keep their init (they sit behind a skip connection).

DAC (`models/dac_codec.py`) has the same problem at CPU scale: with its own init (PyTorch's weights,
zero biases) the encoder output of `compression/dac_mmd_cpu` has an RMS of 0.003 for inputs at 0.1, and
within 20 updates the constant parts that training adds to it (conv biases, Snake's sin^2 offsets)
dominate: all frames pick one code and the output no longer depends on the input. Its residual units
(`.block`: Snake, conv k7, Snake, conv k1) are scaled like SEANet's resnet blocks.
"""
import math
import typing as tp

import torch
from torch import nn
from audiocraft.modules.seanet import SEANetResnetBlock


def _fan_in(conv: nn.Module) -> float:
    if isinstance(conv, nn.ConvTranspose1d):
        return conv.in_channels * conv.kernel_size[0] / conv.stride[0]
    return conv.in_channels // conv.groups * conv.kernel_size[0]


def _set_weight_(conv: nn.Module, std: float) -> None:
    with torch.no_grad():
        if hasattr(conv, 'weight_v'):  # torch.nn.utils.weight_norm: weight = g * v / ||v|| (norm over dims != 0)
            conv.weight_v.normal_(0., std)
            conv.weight_g.copy_(torch.norm_except_dim(conv.weight_v, 2, 0))
        else:
            conv.weight.normal_(0., std)
        if conv.bias is not None:
            conv.bias.zero_()


def preserve_signal_(module: nn.Module, residual_scale: float = 0.1,
                     residual_types: tp.Tuple[type, ...] = (SEANetResnetBlock,)) -> int:
    """Re-initialize the convs of `module` (a SEANet or DAC encoder or decoder) in place; returns how many.

    `residual_types`: the residual blocks, whose branch is their `.block` (SEANet's resnet blocks; DAC's
    residual units, `models.dac_codec.residual_block_types()`)."""
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    for conv in convs:
        _set_weight_(conv, 1. / math.sqrt(_fan_in(conv)))
    for block in module.modules():
        if isinstance(block, residual_types):
            last = [m for m in block.block.modules() if isinstance(m, nn.Conv1d)][-1]
            _set_weight_(last, residual_scale / math.sqrt(_fan_in(last)))
    return len(convs)
