"""Packaged models: `export --package` writes one, `get_pretrained()` loads it offline by name."""
import json
import socket

import pytest
import torch

from audiocraft_mmd import export
from audiocraft_mmd.environment import CODEC_FILE, LM_FILE
from audiocraft_mmd.models import MusicGenMMD
from audiocraft_mmd.models.loaders import load_compression_model
from audiocraft_mmd.models.packaged import DEFAULT_MODEL, PACKAGED_ROOT, require_package


def _block_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)


def test_packaged_model_loads_offline_and_decodes(debug_lm_sig, debug_codec_sig, session_dora_dir, monkeypatch,
                                                  tmp_path, capsys):
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    root = tmp_path / 'pretrained'
    assert export.main(['--package', DEFAULT_MODEL, '--lm', f'//sig/{debug_lm_sig}', '--codec',
                        f'//sig/{debug_codec_sig}', '--root', str(root)]) == 0
    folder = root / DEFAULT_MODEL
    lm_pkg = torch.load(folder / LM_FILE, map_location='cpu', weights_only=True)
    assert {v.dtype for v in lm_pkg['best_state'].values() if v.is_floating_point()} == {torch.float16}
    info = json.loads((folder / 'model.json').read_text())
    assert info['bytes'] < 20 * 2 ** 20 and 'MusicGen-MMD' in (folder / 'MODEL_CARD.md').read_text()
    _block_network(monkeypatch)
    model = MusicGenMMD.get_pretrained(folder=root, device='cpu')  # the default name
    assert model.name == DEFAULT_MODEL and next(model.lm.parameters()).dtype == torch.float32
    model.set_generation_params(duration=1.0)
    audio, tokens = model.generate(['a folk tune'], return_tokens=True)
    assert audio.shape == (1, 1, 32000) and torch.isfinite(audio).all()
    assert tokens.shape == (1, 4, 50) and int(tokens.max()) < 64 and int(tokens.min()) >= 0
    codec = load_compression_model(folder / CODEC_FILE)  # the packaged codec, on its own
    with torch.no_grad():
        assert torch.allclose(codec.decode(tokens), audio, atol=1e-5)
    metadata_audio = model.generate_with_metadata([{'description': 'rock'}, {}])
    assert metadata_audio.shape == (2, 1, 32000) and torch.isfinite(metadata_audio).all()


def test_missing_package_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'cpu-small' is not in this installation.*export --package cpu-small"):
        MusicGenMMD.get_pretrained('cpu-small', device='cpu', folder=tmp_path)
    if not (PACKAGED_ROOT / DEFAULT_MODEL / LM_FILE).exists():  # until the study's model is packaged
        with pytest.raises(FileNotFoundError, match='make reproduce-lm'):
            MusicGenMMD.get_pretrained(device='cpu')
    else:
        assert require_package(DEFAULT_MODEL) == PACKAGED_ROOT / DEFAULT_MODEL


def test_package_refuses_a_hub_codec(debug_lm_sig, session_dora_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    assert export.main(['--package', 'x', '--lm', f'//sig/{debug_lm_sig}', '--root', str(tmp_path),
                        '--codec', '//pretrained/facebook/encodec_32khz']) == 2
    assert 'must load offline' in capsys.readouterr().err and not (tmp_path / 'x' / LM_FILE).exists()


def test_default_model_is_the_packaged_study_model_and_generates_offline(monkeypatch):
    """`get_pretrained()` with no argument: the committed `cpu-small` (the LM study's best delay LM on MMD
    tokens, docs/reproduce/lm/) loads with the network blocked, generates finite audio of the asked
    duration at the data's loudness, and its tokens decode with the packaged codec on its own."""
    from audiocraft_mmd.models.fixed_volume import for_language_model
    _block_network(monkeypatch)
    model = MusicGenMMD.get_pretrained(device='cpu')
    assert model.name == DEFAULT_MODEL and model.sample_rate == 32000
    model.set_generation_params(duration=1.0)
    torch.manual_seed(0)
    audio, tokens = model.generate_with_metadata([{'genre': 'folk', 'instrument': 'piano', 'key': 'A major'}],
                                                 return_tokens=True)
    assert audio.shape == (1, 1, 32000) and torch.isfinite(audio).all()
    frames = tokens.shape[-1]
    assert tokens.shape == (1, model.lm.num_codebooks, frames) and abs(frames - model.frame_rate) <= 1
    assert 0 <= int(tokens.min()) and int(tokens.max()) < model.lm.card
    codec = load_compression_model(PACKAGED_ROOT / DEFAULT_MODEL / CODEC_FILE)
    volume = model.lm.cfg.compression_model_volume
    with torch.no_grad():
        torch.testing.assert_close(for_language_model(codec, volume).decode(tokens), audio, atol=1e-5, rtol=1e-4)
    # decoded at the LM's volume: a unit-RMS codec output times 0.1 cannot be louder than full scale on
    # average, and music is not near-silent (peak above -40 dBFS)
    assert audio.pow(2).mean().sqrt() < 1 and audio.abs().max() > 0.01
