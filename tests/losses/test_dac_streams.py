"""MMD streams of DAC's quantizer (`DACQuantizer.streams` through `codebook_streams`): dimensions, values equal to
DAC's own vectors, codes equal to the forward's, and a gradient that reaches the encoder only."""
import pytest
import torch
import torch.nn.functional as F

from audiocraft_mmd.losses import MMDLoss
from audiocraft_mmd.losses.streams import RVQ_STREAM_KINDS, codebook_layers, codebook_streams, rvq_streams, stream_kinds
from audiocraft_mmd.models import builders
from audiocraft_mmd.models.dac_codec import DACQuantizer
from audiocraft_mmd.solvers.forward_streams import ForwardStreams
from conftest import dac_audio as audio, tiny_dac as tiny_model

KINDS = ('projected', 'quantized', 'residual')


def test_each_quantizer_owns_its_stream_kinds():
    """The config check (models.builders.stream_kinds, by quantizer name) reads the same kinds as the streams
    (losses.streams.stream_kinds, by quantizer object): DAC's three, audiocraft's RVQ and our PVQ two."""
    from audiocraft_mmd.quantization.product import ProductVectorQuantizer
    quantizer = tiny_model().quantizer
    assert stream_kinds(quantizer) == builders.stream_kinds('dac') == DACQuantizer.STREAM_KINDS == KINDS
    assert stream_kinds(ProductVectorQuantizer(dimension=8, n_q=2, bins=4)) == builders.stream_kinds('pvq')
    assert builders.stream_kinds('pvq') == builders.stream_kinds('rvq') == RVQ_STREAM_KINDS
    with pytest.raises(ValueError, match="'projected'"):
        rvq_streams(None, torch.zeros(1, 4, 2), kind='projected')
    with pytest.raises(ValueError, match="for a DAC quantizer"):
        codebook_streams(tiny_model().quantizer, torch.zeros(1, 16, 2), kind='latent')


@pytest.mark.parametrize('kind, dim', [('projected', 4), ('quantized', 16), ('residual', 16)])
def test_each_codebook_stream_has_its_dimension(kind, dim):
    model = tiny_model().eval()
    emb = model.encoder(model.preprocess(audio())[0])
    streams, codes = codebook_streams(model.quantizer, emb, kind=kind, with_codes=True)
    assert streams.shape == (4, 3, dim, emb.shape[-1])
    assert torch.equal(codes, model.encode(audio())[0])
    if kind == 'projected':
        assert torch.allclose(streams.norm(dim=2), torch.ones(4, 3, emb.shape[-1]), atol=1e-5)
    assert codebook_streams(model.quantizer, emb, kind=kind, n_q=2).shape[1] == 2


def test_values_are_dacs_vectors():
    """projected = the picked entry, L2-normalized; quantized = its out-projection; they sum to the decoded latent."""
    model = tiny_model().eval()
    quantizer = model.quantizer
    emb = model.encoder(model.preprocess(audio())[0])
    with torch.no_grad():
        codes = quantizer.encode(emb)
        projected = codebook_streams(quantizer, emb, kind='projected')
        quantized = codebook_streams(quantizer, emb, kind='quantized')
        residual = codebook_streams(quantizer, emb, kind='residual')
        for k, layer in enumerate(quantizer.layers):
            entry = layer.decode_code(codes[:, k])
            assert torch.allclose(projected[:, k], F.normalize(entry, dim=1), atol=1e-6)
            assert torch.allclose(quantized[:, k], layer.out_proj(entry), atol=1e-5)
        assert torch.allclose(quantized.sum(dim=1), quantizer.decode(codes), atol=1e-5)
        assert torch.allclose(residual[:, 0], emb) and torch.allclose(residual[:, 1], emb - quantized[:, 0], atol=1e-6)


@pytest.mark.parametrize('kind', KINDS)
def test_mmd_gradient_reaches_the_encoder_only(kind):
    model = tiny_model().train()
    x = audio(batch=8, length=800, seed=2)
    streams = codebook_streams(model.quantizer, model.encoder(model.preprocess(x)[0]), kind=kind)
    loss = MMDLoss(delay=True)(streams, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    encoder = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in encoder) and sum(g.abs().sum().item() for g in encoder) > 0
    assert all(p.grad is None for p in [*model.quantizer.parameters(), *model.decoder.parameters()])


def test_residual_streams_pass_the_gradient_unchanged():
    """Stage inputs r_k = emb - sum of detached q_j: d r_k / d emb is the identity, as for audiocraft's RVQ."""
    quantizer = tiny_model().quantizer
    emb = torch.randn(2, 16, 5, requires_grad=True)
    weights = torch.randn(2, 3, 16, 5)
    (codebook_streams(quantizer, emb, kind='residual') * weights).sum().backward()
    assert torch.allclose(emb.grad, weights.sum(dim=1))


def test_bank_hooks_see_the_training_forwards_codes():
    """The bank estimator's capture (`ForwardStreams`) recomputes DAC's streams after the forward: they equal
    `codebook_streams` of the encoder output, and their codes those of the forward (dropout on)."""
    model = tiny_model(quantizer_dropout=1.).train()
    assert codebook_layers(model.quantizer) == ()
    capture = ForwardStreams(model.quantizer, 'projected')
    seen = {}
    with capture.armed(lambda streams, emb, codes: seen.update(streams=streams, emb=emb, codes=codes)):
        qres = model(audio())
    capture.remove()
    assert torch.equal(seen['codes'], qres.codes)
    assert torch.equal(seen['streams'], codebook_streams(model.quantizer, seen['emb'], kind='projected'))
    (grad,) = torch.autograd.grad(seen['streams'].sum(), seen['emb'])
    assert grad.abs().sum() > 0
