"""DAC as an audiocraft compression model (`models/dac_codec.py`): it is DAC's own codec (same codes and audio as
`dac.model.DAC`), round trips, quantizer dropout in training only, the penalty, and the config checks."""
import math

import omegaconf
import pytest
import torch

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.models.builders import codebook_counts, hop_length, validate_config
from audiocraft_mmd.models.dac_codec import DACQuantizer
from conftest import TINY_DAC, dac_audio as audio, tiny_dac as tiny_model, tiny_dac_cfg as tiny_cfg


def test_round_trip_shapes_and_codes():
    model = tiny_model().eval()
    assert (model.frame_rate, model.sample_rate, model.channels, model.cardinality) == (1000, 8000, 1, 16)
    assert model.total_codebooks == model.num_codebooks == 3
    x = audio()
    with torch.no_grad():
        qres = model(x)
        codes, scale = model.encode(x)
        decoded = model.decode(codes, scale)
    assert qres.x.shape == x.shape  # padded to 800 samples, trimmed back
    assert codes.shape == (4, 3, math.ceil(797 / 8)) and codes.dtype == torch.long and scale is None
    assert 0 <= codes.min() and codes.max() < 16 and len(codes.unique()) > 1
    assert torch.equal(codes, qres.codes)
    assert decoded.shape == (4, 1, 800)
    assert torch.allclose(decoded[..., :797], qres.x, atol=1e-6)


def test_codes_and_audio_are_dacs_own():
    """The wrapper runs DAC's modules: codes and audio equal those of `dac.model.DAC` built from the same kwargs."""
    import dac
    model = tiny_model(seed=3).eval()
    kwargs = {k: v for k, v in TINY_DAC.items() if k not in ('commitment_weight', 'codebook_weight')}
    torch.manual_seed(3)
    net = dac.model.DAC(sample_rate=8000, **kwargs).eval()
    x = audio()
    with torch.no_grad():
        z, dac_codes, *_ = net.encode(net.preprocess(x, 8000))
        codes, _ = model.encode(x)
        assert torch.equal(codes, dac_codes)
        assert torch.allclose(model.decode(codes), net.decode(z), atol=1e-6)


def test_quantizer_dropout_in_training_only():
    """quantizer_dropout=1: in training each item decodes a prefix of its codes, in eval all of them."""
    model = tiny_model(quantizer_dropout=1.)
    quantizer = model.quantizer
    emb = torch.randn(16, 16, 5)
    with torch.no_grad():
        full = quantizer.eval()(emb, 1000)
        prefixes = [quantizer.decode(full.codes[:, :k]) for k in (1, 2, 3)]
        assert torch.allclose(full.x, prefixes[-1], atol=1e-6)
        torch.manual_seed(0)
        train = quantizer.train()(emb, 1000)
    assert torch.equal(train.codes, full.codes), "every stage runs for every item"
    kept = [next(k for k in (1, 2, 3) if torch.allclose(train.x[i], prefixes[k - 1][i], atol=1e-6))
            for i in range(16)]
    assert min(kept) < 3, "some item decodes fewer codebooks"
    with torch.no_grad():
        no_dropout = tiny_model(quantizer_dropout=0.).quantizer.train()(emb, 1000)
        reference = tiny_model(quantizer_dropout=0.).quantizer.eval()(emb, 1000)
    assert torch.allclose(no_dropout.x, reference.x, atol=1e-6)


def test_penalty_trains_the_codebooks():
    model = tiny_model().train()
    qres = model(audio())
    commitment, codebook = qres.metrics['vq_commitment'], qres.metrics['vq_codebook']
    assert torch.allclose(qres.penalty, 0.25 * commitment + codebook)
    assert torch.allclose(qres.bandwidth, torch.full((4,), 3 * 4 * 1000 / 1000))  # 3 codebooks x 4 bits x 1 kHz
    qres.penalty.backward()
    for layer in model.quantizer.layers:
        assert layer.codebook.weight.grad.abs().sum() > 0, "DAC's codebooks learn by gradient (codebook loss)"
    assert all(p.grad is None for p in model.decoder.parameters())


def test_fewer_codebooks():
    model = tiny_model().eval()
    model.set_num_codebooks(2)
    x = audio()
    with torch.no_grad():
        codes, _ = model.encode(x)
        qres = model(x)
    assert codes.shape[1] == qres.codes.shape[1] == 2 and model.num_codebooks == 2
    assert torch.allclose(model.decode(codes)[..., :797], qres.x, atol=1e-6)
    with pytest.raises(RuntimeError, match='all 3 codebooks'):
        model.train()(x)
    with pytest.raises(ValueError, match='cannot use 4'):
        model.set_num_codebooks(4)
    with pytest.raises(ValueError, match=r'k<=3'):
        model.decode(torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match='mono'):
        model.encode(torch.zeros(1, 2, 80))


def test_helpers_read_the_dac_block():
    cfg = tiny_cfg()
    assert codebook_counts(cfg) == (3, 16) and hop_length(cfg) == 8
    assert isinstance(tiny_model().quantizer, DACQuantizer)


@pytest.mark.parametrize('key, value', [
    ('encoder_rates', [2, 5]),           # odd stride
    ('decoder_rates', [2, 2]),           # does not upsample by the hop length 8
    ('decoder_dim', 6),                  # not a multiple of 2 ** 2
    ('codebook_dim', [4, 4, 4]),         # one dimension for every codebook
    ('quantizer_dropout', True),
    ('quantizer_dropout', 1.5),
    ('codebook_size', 1),
    ('latent_dim', 0),
    ('commitment_weight', -1),
])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"`dac\.{key}="):
        validate_config(tiny_cfg(**{key: value}))


@pytest.mark.parametrize('change, key', [
    ({'channels': 2}, 'channels'),
    ({'sample_rate': 8004}, 'sample_rate'),
    ({'mmd': {'streams': 'latent'}}, 'mmd.streams'),
    ({'compression_model': 'soundstream'}, 'compression_model'),
])
def test_config_errors_around_the_block(change, key):
    cfg = omegaconf.OmegaConf.merge(tiny_cfg(), change)
    with pytest.raises(ConfigError, match=rf"`{key}="):
        validate_config(cfg)


def test_unknown_and_missing_keys():
    cfg = tiny_cfg()
    cfg.dac.n_q = 4
    with pytest.raises(ConfigError, match=r"`dac=\['n_q'\]`.*unknown"):
        validate_config(cfg)
    del cfg.dac['n_q'], cfg.dac['codebook_dim']
    with pytest.raises(ConfigError, match=r"`dac=\['codebook_dim'\]`.*missing"):
        validate_config(cfg)


def test_preserve_signal_init_scales_dacs_residual_units():
    """codec_training.init=preserve_signal on DAC: convs drawn at variance 1 / fan_in, the last conv of each residual
    unit at residual_scale**2 / fan_in, and an encoder output at the input's scale (DAC's own init: ~1/30 of it)."""
    from dac.model.dac import ResidualUnit
    from audiocraft_mmd.models.codec_training import apply_codec_training
    from audiocraft_mmd.models.initialization import _fan_in
    x = audio(length=800)
    default = tiny_model(encoder_dim=8, decoder_dim=64, latent_dim=32)
    model = tiny_model(encoder_dim=8, decoder_dim=64, latent_dim=32)
    block = omegaconf.OmegaConf.create({'init': 'preserve_signal', 'residual_scale': 0.1, 'dead_codes': 'audiocraft'})
    assert apply_codec_training(model, block) == ['preserve_signal init of 32 convs (residual_scale 0.1)']
    units = [m for m in model.modules() if isinstance(m, ResidualUnit)]
    assert len(units) == 12
    for unit in units:
        last = unit.block[-1]
        assert 0.05 < last.weight_v.std().item() * math.sqrt(_fan_in(last)) < 0.2
        assert torch.allclose(last.weight_g.flatten(), last.weight_v.flatten(1).norm(dim=1))
    with torch.no_grad():
        scale = {name: m.encoder(m.preprocess(x)[0]).pow(2).mean().sqrt().item() / x.pow(2).mean().sqrt().item()
                 for name, m in (('default', default), ('preserve', model))}
    assert scale['default'] < 0.2 < 0.5 < scale['preserve']


def test_dead_code_restarts_in_training_only_and_state_dict_unchanged():
    """codec_training.dead_codes=replace on DAC: CodeRestarts after each training forward (reported as
    vq_restarts), never in eval, and no new state-dict keys (exports stay DAC's)."""
    from audiocraft_mmd.models.codec_training import apply_codec_training
    model = tiny_model()
    keys = set(model.state_dict())
    block = omegaconf.OmegaConf.create({'init': 'default', 'residual_scale': 0.1, 'dead_codes': 'replace'})
    assert apply_codec_training(model, block) == [f"dead-code restarts in DAC's {TINY_DAC['n_codebooks']} codebooks"]
    assert set(model.state_dict()) == keys
    model.quantizer.restarts.threshold = 1e9  # every entry counts as dead: all restart at the first forward
    x = audio(length=1600)
    before = [layer.codebook.weight.detach().clone() for layer in model.quantizer.layers]
    model.eval()
    with torch.no_grad():
        model(x)
    assert all(torch.equal(b, layer.codebook.weight) for b, layer in zip(before, model.quantizer.layers))
    model.train()
    result = model(x)
    assert result.metrics['vq_restarts'].item() == TINY_DAC['n_codebooks'] * TINY_DAC['codebook_size']
    assert not any(torch.equal(b, layer.codebook.weight) for b, layer in zip(before, model.quantizer.layers))


def test_residual_mix_fades_the_decoder_input_from_latent_to_codes():
    """codec_training.quantizer_warmup: the schedule (1 -> 0 linearly over `warmup` updates) and its effect in
    DAC's training forward (mix 1: the decoder gets the latent itself; eval ignores the mix)."""
    from audiocraft_mmd.models.codec_training import residual_mix
    assert [residual_mix(u, 120) for u in (0, 30, 120, 500)] == [1., 0.75, 0., 0.]
    assert residual_mix(0, 0) == 0.
    model = tiny_model()
    x = audio(length=1600)
    latent = model.encoder(model.preprocess(x)[0])
    quantizer = model.quantizer
    quantizer.train()
    torch.manual_seed(0)
    codes_only = quantizer(latent, frame_rate=50)
    quantizer.residual_mix = 1.
    torch.manual_seed(0)
    mixed = quantizer(latent, frame_rate=50)
    assert torch.allclose(mixed.x, latent, atol=1e-6) and not torch.allclose(codes_only.x, latent, atol=1e-3)
    assert torch.equal(mixed.codes, codes_only.codes), "the codes (LM tokens) do not depend on the mix"
    quantizer.eval()
    assert torch.allclose(quantizer(latent, frame_rate=50).x, quantizer.decode(quantizer.encode(latent)), atol=1e-6)
