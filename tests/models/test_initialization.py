"""preserve_signal_: at init, a small SEANet's output depends on its input (the default init's does not)."""
import pytest
import torch
from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder

from audiocraft_mmd.models.initialization import preserve_signal_

KWARGS = dict(channels=1, dimension=32, n_filters=4, n_residual_layers=1, ratios=[8, 5, 4, 4], lstm=2,
              norm='weight_norm')


def input_dependence(encoder, decoder, x):
    """std across inputs of the output, over its RMS: 0 when every input gives the same output."""
    with torch.no_grad():
        y = decoder(encoder(x))
    return (y.std(dim=0).mean() / y.pow(2).mean().sqrt()).item()


@pytest.fixture
def music_like():
    torch.manual_seed(0)
    t = torch.arange(16000) / 16000
    freqs = torch.rand(8, 1, 1) * 800 + 100
    return 0.1 * torch.sin(2 * torch.pi * freqs * t) + 0.02 * torch.randn(8, 1, 16000)


def test_default_init_output_ignores_input(music_like):
    # The cause of the collapse (docs/codec_collapse.md): at PyTorch's default init the biases win.
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**KWARGS), SEANetDecoder(**KWARGS)
    assert input_dependence(encoder, decoder, music_like) < 1e-2


def test_preserve_signal_output_follows_input(music_like):
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**KWARGS), SEANetDecoder(**KWARGS)
    assert preserve_signal_(encoder) > 0 and preserve_signal_(decoder) > 0
    # Independent inputs of equal level: a signal-preserving net keeps the output's variation across
    # inputs of the order of its RMS (LSTM biases add a constant part); 0.1 is 10x above the default's bound.
    assert input_dependence(encoder, decoder, music_like) > 0.1


def test_preserve_signal_keeps_weight_norm_parametrization():
    torch.manual_seed(0)
    decoder = SEANetDecoder(**KWARGS)
    preserve_signal_(decoder)
    for module in decoder.modules():
        if hasattr(module, 'weight_v'):
            effective = module.weight_g * module.weight_v / torch.norm_except_dim(module.weight_v, 2, 0)
            assert torch.allclose(effective, module.weight_v, atol=1e-6), "weight_g must equal ||weight_v||"
            assert module.bias is None or torch.all(module.bias == 0)
