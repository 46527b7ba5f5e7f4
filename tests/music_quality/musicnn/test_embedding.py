"""musicnn preprocessing: errors that name the file, patching, and rate independence."""
import json

import pytest
import soundfile
import torch

from audiocraft_mmd.music_quality.musicnn.embedding import (MIN_DURATION, AudioError, MusicnnEmbedder, log_mel,
                                                            prepare_waveform, to_patches)
from audiocraft_mmd.music_quality.sets import embed_set, list_audio


def _music(seconds: float, rate: int) -> torch.Tensor:
    """A pulsing chord (the same continuous signal at any rate), [1, T]."""
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    chord = sum(torch.sin(2 * torch.pi * f * t) / k for k, f in enumerate((220., 330., 440., 660., 1320., 2640.), 1))
    return (0.1 * chord * (0.6 + 0.4 * torch.sin(2 * torch.pi * 3 * t))).float()[None]


@pytest.mark.parametrize('wav,rate,message', [
    (torch.full((1, 64000), float('nan')), 32000, r'clip\.wav: 64000 NaN/inf samples'),
    (torch.zeros(1, 128000), 32000, r'clip\.wav: silent \(peak -inf dBFS'),
    (torch.full((1, 128000), 1e-5), 32000, r'clip\.wav: silent \(peak -100\.0 dBFS'),
    (_music(2.9, 32000), 32000, r'clip\.wav: 2\.900 s is shorter than one musicnn patch \(2\.976 s\)'),
    (_music(4, 8000), 8000, r'clip\.wav: sample rate 8000 Hz is below musicnn'),
    (_music(4, 32000), 32000.5, r'clip\.wav: sample rate 32000\.5 is not an integer'),
])
def test_unusable_audio_raises_naming_it(wav, rate, message):
    with pytest.raises(AudioError, match=message):
        prepare_waveform(wav, rate, name='clip.wav')


def test_silence_allowed_when_asked_and_shortest_clip_has_one_patch():
    embedder = MusicnnEmbedder()
    out = embedder(torch.zeros(1, 32000 * 4), 32000, allow_silence=True)
    assert out.embeddings.shape == (1, 200) and torch.isfinite(out.embeddings).all()
    shortest = int(round(MIN_DURATION * 16000))
    assert embedder(_music(1, 16000)[:, :1].repeat(1, shortest), 16000, allow_silence=True).embeddings.shape[0] == 1
    with pytest.raises(AudioError, match='shorter than one musicnn patch'):
        embedder(torch.ones(1, shortest - 1) * 0.1, 16000)


def test_patching_and_rate_independence():
    wav16 = _music(10, 16000)
    mel = log_mel(wav16)[0]
    assert mel.shape == (1 + 160000 // 256, 96)
    assert to_patches(mel).shape == (3, 187, 96)  # 626 frames -> 3 full patches, tail dropped
    assert to_patches(mel, hop=62).shape == (1 + (626 - 187) // 62, 187, 96)
    torch.testing.assert_close(to_patches(mel, hop=62)[1], mel[62:62 + 187])
    embedder = MusicnnEmbedder()
    reference = embedder(wav16, 16000).embeddings
    for rate in (32000, 44100, 48000):  # the same signal at other rates embeds (nearly) the same
        other = embedder(_music(10, rate), rate).embeddings
        assert (other - reference).norm() < 0.05 * reference.norm(), rate
    stereo = torch.cat([wav16, wav16])
    torch.testing.assert_close(embedder(stereo, 16000).embeddings, reference)


def test_manifest_rate_mismatch_is_skipped_and_reported(tmp_path):
    good, liar = tmp_path / 'good.wav', tmp_path / 'liar.wav'
    soundfile.write(good, _music(4, 32000)[0].numpy(), 32000)
    soundfile.write(liar, _music(4, 44100)[0].numpy(), 44100)
    manifest = tmp_path / 'egs' / 'data.jsonl'
    manifest.parent.mkdir()
    manifest.write_text(''.join(json.dumps({'path': str(p), 'duration': 4.0, 'sample_rate': 32000}) + '\n'
                                for p in (good, liar, tmp_path / 'missing.wav')))
    items = list_audio(manifest.parent)
    assert [i.path.name for i in items] == ['good.wav', 'liar.wav', 'missing.wav']
    result = embed_set(MusicnnEmbedder(), items, progress=False)
    assert result.names == [str(good)] and result.embeddings.shape == (1, 200)
    assert result.tag_distributions.shape == (1, 50)
    assert len(result.errors) == 2
    assert result.errors[0] == f"{liar}: sample rate 44100 Hz, but its manifest says 32000 Hz"
    assert result.errors[1].startswith(f"{tmp_path / 'missing.wav'}: cannot read audio")
    with pytest.raises(ValueError, match='no audio files'):
        list_audio(tmp_path / 'egs' / 'empty') if (tmp_path / 'egs' / 'empty').mkdir() is None else None
