"""transformers-format EnCodec (the hub releases) converted to audiocraft's EncodecModel: same codes, same audio."""
import types

import pytest
import torch

from conftest import RELEASE_32KHZ, RELEASE_ID, SMALL_32KHZ, publish_in_hub_cache, transformers_encodec
from audiocraft_mmd.compat import hf_encodec
from audiocraft_mmd.models.codec_source import TRANSFORMERS, load_source_model, resolve_source


@pytest.mark.parametrize('config', [SMALL_32KHZ, RELEASE_32KHZ], ids=['small', 'release_32khz'])
def test_converted_codec_equals_transformers(config, offline_hub):
    hf_model = transformers_encodec(config)
    publish_in_hub_cache(hf_model, offline_hub)
    source = resolve_source(f'//pretrained/{RELEASE_ID}')
    assert source.kind == TRANSFORMERS
    ours = load_source_model(source)
    assert ours.sample_rate == 32000 and ours.num_codebooks == hf_model.config.num_quantizers
    torch.manual_seed(1)
    x = 0.1 * torch.randn(2, 1, 6400)  # 0.2 s, 10 frames
    with torch.no_grad():
        encoded = hf_model.encode(x)
        codes, scale = ours.encode(x)
        assert torch.equal(codes, encoded.audio_codes[0])
        assert codes.float().std() > 0  # random codebooks: the codes vary
        theirs = hf_model.decode(encoded.audio_codes, encoded.audio_scales).audio_values
        audio = ours.decode(codes, scale)
    assert audio.shape == theirs.shape
    assert (audio - theirs).abs().max() <= 1e-5 * theirs.abs().max()


def _old_spelling(state: dict) -> dict:
    """A state dict as transformers < 4.45 (torch.nn.utils.weight_norm) saved it."""
    return {key.replace('parametrizations.weight.original0', 'weight_g')
            .replace('parametrizations.weight.original1', 'weight_v'): value for key, value in state.items()}


def test_both_weight_norm_spellings_convert_alike(offline_hub):
    hf_model = transformers_encodec(SMALL_32KHZ)
    publish_in_hub_cache(hf_model, offline_hub)
    ours = load_source_model(resolve_source(RELEASE_ID))
    target = ours.state_dict()
    parametrized = hf_model.state_dict()
    assert any('parametrizations.weight.original0' in key for key in parametrized)
    new = hf_encodec.to_audiocraft_state(parametrized, target)
    old = hf_encodec.to_audiocraft_state(_old_spelling(parametrized), target)
    assert new.keys() == old.keys() == target.keys()
    assert all(torch.equal(new[key], old[key]) and torch.equal(new[key], target[key]) for key in target)


def test_audiocraft_converter_fails_where_ours_loads(offline_hub):
    """audiocraft 1.3.0's `CompressionSolver.load_from_pretrained` renames transformers 5's parametrized keys into
    names audiocraft's model does not have: what made `continue_from=//pretrained/...` crash."""
    from audiocraft.solvers.compression import CompressionSolver
    publish_in_hub_cache(transformers_encodec(SMALL_32KHZ), offline_hub)
    ours = load_source_model(resolve_source(RELEASE_ID))
    fake_solver = types.SimpleNamespace(logger=types.SimpleNamespace(warning=lambda *args: None))
    state = CompressionSolver.load_from_pretrained(fake_solver, RELEASE_ID)['best_state']['model']
    assert 'encoder.model.0.conv.conv.parametrizations.weight.original0' in state
    with pytest.raises(RuntimeError, match='parametrizations'):
        ours.load_state_dict(state)


def test_unsupported_checkpoints_name_the_key():
    from transformers import EncodecConfig
    chunked = EncodecConfig(**dict(SMALL_32KHZ, chunk_length_s=1.0, overlap=0.01))
    with pytest.raises(hf_encodec.UnsupportedCheckpoint, match='chunk_length_s'):
        hf_encodec.architecture(chunked)
    with pytest.raises(hf_encodec.UnsupportedCheckpoint, match='codebook_dim'):
        hf_encodec.architecture(EncodecConfig(**dict(SMALL_32KHZ, codebook_dim=16)))


@pytest.mark.parametrize('n_q,bins,rate,hop', [
    (4, 2048, 32000, 640), (4, 64, 32000, 640), (8, 1024, 24000, 320), (3, 1024, 24000, 320)])
def test_bandwidth_gives_transformers_the_codebook_count(n_q, bins, rate, hop):
    from transformers import EncodecConfig
    kbps = hf_encodec.bandwidth(n_q, bins, rate, hop)
    ratios = {640: [8, 5, 4, 4], 320: [8, 5, 4, 2]}[hop]
    config = EncodecConfig(sampling_rate=rate, upsampling_ratios=ratios, codebook_size=bins, target_bandwidths=[kbps])
    assert config.num_quantizers == n_q
    assert transformers_encodec_quantizers(config, kbps) == n_q


def transformers_encodec_quantizers(config, kbps: float) -> int:
    """How many codebooks transformers' encode uses at `kbps` (its get_num_quantizers_for_bandwidth)."""
    from transformers.models.encodec.modeling_encodec import EncodecResidualVectorQuantizer
    return EncodecResidualVectorQuantizer(config).get_num_quantizers_for_bandwidth(kbps)
