"""MusicGenMMD: export, loading (folder, //sig/, debug, hub id offline), generation, step counts."""
import time

import pytest
import torch

from audiocraft_mmd import export
from audiocraft_mmd.models import MusicGenMMD, build_debug_model


def _count_lm_calls(model) -> list:
    """Count forward passes of the LM (one per autoregressive step, CFG being batched)."""
    calls = [0]
    model.lm.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_export_then_generate(debug_lm_sig, session_dora_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    out = tmp_path / 'export'
    assert export.main(['--lm', f'//sig/{debug_lm_sig}', '--out', str(out)]) == 0
    for name in ('state_dict.bin', 'compression_state_dict.bin'):
        pkg = torch.load(out / name, map_location='cpu', weights_only=True)
        assert pkg['exported'] and isinstance(pkg['xp.cfg'], str)
    model = MusicGenMMD.get_pretrained(str(out), device='cpu')
    # trained on 2 s segments: MusicGen's 18 s default stride would assert
    assert model.max_duration == 2 and 0 < model.extend_stride < 2
    assert model.compression_model.num_codebooks == 4 and model.sample_rate == 32000
    model.set_generation_params(duration=0.5)
    wav = model.generate(['a Bach chorale played by a string orchestra'])
    assert wav.shape == (1, 1, 16000) and torch.isfinite(wav).all()


def test_get_pretrained_from_sig(debug_lm_sig, session_dora_dir, monkeypatch):
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    model = MusicGenMMD.get_pretrained(f'//sig/{debug_lm_sig}', device='cpu')
    model.set_generation_params(duration=0.3)
    wav = model.generate_unconditional(2)
    assert wav.shape == (2, 1, int(0.3 * 50) * 640) and torch.isfinite(wav).all()


def test_a_codec_alone_exports_for_audiocraft_s_own_loader(debug_codec_sig, session_dora_dir, monkeypatch, tmp_path):
    """`export --codec X --out DIR`: audiocraft's `CompressionModel.get_pretrained(path)` decodes what ours does."""
    from audiocraft.models import CompressionModel
    from audiocraft_mmd.models.loaders import load_compression_model
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    assert export.main(['--codec', f'//sig/{debug_codec_sig}', '--out', str(tmp_path)]) == 0
    path = tmp_path / 'compression_state_dict.bin'
    theirs, ours = CompressionModel.get_pretrained(str(path), device='cpu'), load_compression_model(path)
    audio = 0.1 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes, scale = theirs.encode(audio)
        assert torch.equal(codes, ours.encode(audio)[0])
        assert torch.allclose(theirs.decode(codes, scale), ours.decode(codes, scale))


def test_export_refuses_a_codec_as_lm(debug_codec_sig, session_dora_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('AUDIOCRAFT_MMD_DORA_DIR', str(session_dora_dir))
    assert export.main(['--lm', f'//sig/{debug_codec_sig}', '--out', str(tmp_path / 'x')]) == 2
    err = capsys.readouterr().err
    assert f'{debug_codec_sig}/checkpoint.th' in err
    assert 'compression model (codec) checkpoint, not a MusicGen LM' in err
    assert not (tmp_path / 'x').exists()


def test_debug_model_generates():
    model = MusicGenMMD.get_pretrained('debug', device='cpu')
    model.set_generation_params(duration=0.2)
    wav = model.generate(['rock', 'folk'])
    assert wav.shape == (2, 1, 6400) and torch.isfinite(wav).all()


@pytest.mark.parametrize('pattern,expected', [('delay', lambda T, K: T + K - 1), ('unroll', lambda T, K: K * T)])
def test_autoregressive_steps(pattern, expected):
    model = build_debug_model(pattern=pattern)
    model.set_generation_params(duration=0.4)  # 10 frames at 25 Hz
    calls = _count_lm_calls(model)
    wav, tokens = model.generate(['a folk tune'], return_tokens=True)
    K, T = model.lm.num_codebooks, tokens.shape[-1]
    assert T == 10 and wav.shape[-1] == 10 * 1280
    assert calls[0] == expected(T, K), f"{pattern}: {calls[0]} steps for T={T}, K={K}"


def test_short_training_segment_and_extension():
    from audiocraft.models import MusicGen
    model = build_debug_model(max_duration=0.4)
    with pytest.raises(AssertionError):  # the audiocraft behaviour MusicGenMMD replaces
        MusicGen('x', model.compression_model, model.lm, max_duration=0.4)
    model.set_generation_params(duration=0.6)  # beyond max_duration: extended generation
    wav = model.generate(['a folk tune'])
    assert wav.shape == (1, 1, 15 * 1280) and torch.isfinite(wav).all()
    with pytest.raises(ValueError, match='extend_stride'):
        model.set_generation_params(extend_stride=0.5)


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    start = time.time()
    with pytest.raises(RuntimeError, match='facebook/musicgen-small'):
        MusicGenMMD.get_pretrained('facebook/musicgen-small', device='cpu')
    assert time.time() - start < 10
