"""FixedVolumeCompressionModel: a renormalizing codec's tokens without their scale, decoded at a fixed RMS."""
import pytest
import torch

from audiocraft.models.builders import get_debug_compression_model
from audiocraft.models.encodec import EncodecModel

from audiocraft_mmd.models.fixed_volume import DEFAULT_VOLUME, FixedVolumeCompressionModel, for_language_model


def _renormalizing_codec() -> EncodecModel:
    debug = get_debug_compression_model('cpu')
    return EncodecModel(debug.encoder, debug.decoder, debug.quantizer, frame_rate=debug.frame_rate,
                        sample_rate=debug.sample_rate, channels=debug.channels, renormalize=True).eval()


def test_default_volume_is_the_data_builders_loudness():
    assert DEFAULT_VOLUME == pytest.approx(0.1)  # -20 dBFS RMS (data/signal.py TARGET_RMS_DBFS)


@torch.no_grad()
def test_tokens_are_the_codecs_and_decoding_is_at_the_fixed_volume():
    codec = _renormalizing_codec()
    wrapped = for_language_model(codec, volume=0.1)
    assert isinstance(wrapped, FixedVolumeCompressionModel)
    torch.manual_seed(0)
    x = torch.randn(3, 1, 3200) * torch.tensor([0.01, 0.1, 1.0]).view(3, 1, 1)  # three loudnesses
    codes, scale = codec.encode(x)
    assert scale is not None, "the codec under test must renormalize"
    wrapped_codes, wrapped_scale = wrapped.encode(x)
    assert wrapped_scale is None and torch.equal(wrapped_codes, codes)
    # the tokens describe unit-RMS audio: the same piece at any loudness gives the same tokens
    assert torch.equal(wrapped.encode(x[1:2] * 7)[0], wrapped_codes[1:2])
    audio = wrapped.decode(codes)
    unit = codec.decode(codes, None)  # what audiocraft's generation would decode: unit-RMS audio
    torch.testing.assert_close(audio, 0.1 * unit)
    torch.testing.assert_close(for_language_model(codec, volume=0.2).decode(codes), 2 * audio)
    torch.testing.assert_close(wrapped.decode(codes, scale), codec.decode(codes, scale))  # an explicit scale wins


def test_properties_are_the_codecs_and_plain_codecs_are_not_wrapped():
    codec = _renormalizing_codec()
    wrapped = for_language_model(codec)
    for name in ('channels', 'frame_rate', 'sample_rate', 'cardinality', 'num_codebooks', 'total_codebooks'):
        assert getattr(wrapped, name) == getattr(codec, name), name
    wrapped.set_num_codebooks(2)
    assert codec.num_codebooks == 2 == wrapped.num_codebooks
    plain = get_debug_compression_model('cpu')
    assert not plain.renormalize and for_language_model(plain) is plain


def test_bad_volume_names_the_key():
    with pytest.raises(ValueError, match='compression_model_volume'):
        FixedVolumeCompressionModel(_renormalizing_codec(), volume=0.)
