"""Our EnCodec codecs in transformers' format: `EncodecModel.from_pretrained` decodes what ours decodes."""
import pytest
import torch

from conftest import tiny_dac_cfg
from audiocraft_mmd.compat.hf_encodec import UnsupportedCheckpoint
from audiocraft_mmd.models.builders import get_compression_model
from audiocraft_mmd.models.codec_source import model_config
from audiocraft_mmd.models.transformers_export import check_exportable, to_transformers

# The debug recipe's codec (config/solver/compression/debug.yaml): 4 filters, 32 dims, 4 x 64 codes at 50 Hz.
DEBUG_CODEC = {'sample_rate': 32000, 'channels': 1, 'seanet.n_filters': 4, 'seanet.dimension': 32,
               'seanet.ratios': [8, 5, 4, 4], 'rvq.n_q': 4, 'rvq.bins': 64}


def _codec(seed: int = 0, **changes):
    torch.manual_seed(seed)
    cfg = model_config({**DEBUG_CODEC, **changes})
    model = get_compression_model(cfg).eval()
    for layer in model.quantizer.vq.layers:  # trained-like codebooks (k-means would run at the first forward)
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1.)
    return cfg, model


@pytest.mark.parametrize('renormalize', [False, True])
def test_exported_codec_decodes_like_ours(renormalize, tmp_path):
    from transformers import EncodecModel
    cfg, ours = _codec(**{'encodec.renormalize': renormalize})
    to_transformers(cfg, ours.state_dict()).save_pretrained(tmp_path)
    theirs = EncodecModel.from_pretrained(tmp_path).eval()
    assert theirs.config.num_quantizers == 4 and theirs.config.pad_mode == 'constant'
    torch.manual_seed(1)
    x = 0.3 * torch.randn(2, 1, 6400)
    with torch.no_grad():
        codes, scale = ours.encode(x)
        encoded = theirs.encode(x)
        assert torch.equal(encoded.audio_codes[0], codes)
        audio = ours.decode(codes, scale)
        exported = theirs.decode(encoded.audio_codes, encoded.audio_scales).audio_values
    assert (scale is None) == (not renormalize)
    assert (exported - audio).abs().max() <= 1e-5 * audio.abs().max()


def test_pvq_dac_and_unquantized_codecs_are_refused_with_the_reason():
    with pytest.raises(UnsupportedCheckpoint, match='encodec.quantizer=pvq.*residual VQ'):
        check_exportable(model_config({**DEBUG_CODEC, 'encodec.quantizer': 'pvq'}))
    with pytest.raises(UnsupportedCheckpoint, match='compression_model=dac.*DacModel'):
        check_exportable(tiny_dac_cfg())
    with pytest.raises(UnsupportedCheckpoint, match='no_quant'):
        check_exportable(model_config({**DEBUG_CODEC, 'encodec.quantizer': 'no_quant'}))
    with pytest.raises(UnsupportedCheckpoint, match='seanet.activation'):
        check_exportable(model_config({**DEBUG_CODEC, 'seanet.activation': 'GELU'}))
