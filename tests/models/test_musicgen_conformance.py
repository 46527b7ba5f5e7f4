"""Conformance: audiocraft's own MusicGen usage run against MusicGenMMD (tiny random models, fast).

Sources, adapted: audiocraft's `tests/models/test_musicgen.py` (debug model: shapes of every generate
method, within and past `max_duration`), audiocraft's README (set_generation_params(duration=8),
generate_unconditional, generate, generate_with_chroma, audio_write) and our README
(generate_with_metadata). Every generate method either returns audio of the asked duration or, for
melody conditioning on an LM without a chroma conditioner, refuses with an error that says so.
The debug codec runs at 25 Hz and 32 kHz; `max_duration` is set small so that "past the training
segment" takes few steps.
"""
import pytest
import torch

from audiocraft_mmd.models.musicgen_mmd import build_debug_model

SR = 32000
METADATA = ('genre', 'instrument', 'key')


@pytest.fixture(scope='module')
def text_model():
    torch.manual_seed(0)
    model = build_debug_model(max_duration=30.)
    model.set_generation_params(duration=2.0, extend_stride=2.)  # as audiocraft's test
    return model


@pytest.fixture(scope='module', params=['delay', 'unroll'])
def metadata_model(request):
    """An LM conditioned on metadata fields (as conditioner=metadata_lut), trained segment 1 s."""
    torch.manual_seed(0)
    return build_debug_model(pattern=request.param, max_duration=1.0, conditions=METADATA)


# --- audiocraft tests/models/test_musicgen.py, adapted ---

def test_base(text_model):
    assert text_model.frame_rate == 25 and text_model.sample_rate == SR and text_model.audio_channels == 1


def test_generate_unconditional(text_model):
    assert list(text_model.generate_unconditional(3).shape) == [3, 1, 64000]


def test_generate_continuation(text_model):
    assert list(text_model.generate_continuation(torch.randn(3, 1, 32000), SR).shape) == [3, 1, 64000]
    wav = text_model.generate_continuation(torch.randn(2, 1, 32000), SR, ['youpi', 'lapin dort'])
    assert list(wav.shape) == [2, 1, 64000]
    with pytest.raises(AssertionError):
        text_model.generate_continuation(torch.randn(2, 1, 32000), SR, ['youpi', 'lapin dort', 'one too many'])


def test_generate(text_model):
    assert list(text_model.generate(['youpi', 'lapin dort']).shape) == [2, 1, 64000]


def test_generate_long():
    model = build_debug_model(max_duration=3.)
    model.set_generation_params(duration=4., extend_stride=2.)
    assert list(model.generate(['youpi', 'lapin dort']).shape) == [2, 1, SR * 4]


# --- every generate method past the training segment, with metadata conditioning ---

DURATION = 2.4  # > max_duration = 1 s: audiocraft's extension path (stride 0.6 s); a whole number of 25 Hz frames


def test_generate_with_metadata_past_training_segment(metadata_model):
    """The issue-30 bug: KeyError 'self_wav' from audiocraft's extension loop."""
    metadata_model.set_generation_params(duration=DURATION)
    wav, tokens = metadata_model.generate_with_metadata(
        [{'genre': 'folk', 'instrument': 'piano', 'key': 'A major'}, {'genre': 'rock'}], return_tokens=True)
    # audiocraft's extension loop floors each chunk to whole frames: it may end one frame (1280 samples) short
    assert wav.shape[:2] == (2, 1) and abs(wav.shape[-1] - int(DURATION * SR)) <= SR // 25
    assert abs(tokens.shape[-1] - int(DURATION * 25)) <= 1


@pytest.mark.parametrize('duration', [0.8, DURATION])
def test_every_generate_method_at_duration(metadata_model, duration):
    metadata_model.set_generation_params(duration=duration)
    length = int(duration * SR)

    def close(wav, batch):  # within one frame: audiocraft's extension loop floors chunks to whole frames
        return wav.shape[:2] == (batch, 1) and abs(wav.shape[-1] - length) <= SR // 25
    assert close(metadata_model.generate_unconditional(2), 2)
    assert close(metadata_model.generate(['folk', 'rock']), 2)  # fields lacking: None
    assert close(metadata_model.generate_with_metadata([{'genre': 'folk'}]), 1)
    assert close(metadata_model.generate_continuation(torch.randn(2, 1, SR // 2), SR), 2)
    with pytest.raises(RuntimeError, match='no melody'):
        metadata_model.generate_with_chroma(['folk', 'rock'], torch.randn(2, 1, SR), SR)


# --- audiocraft README ---

def test_audiocraft_readme_example(tmp_path):
    from audiocraft.data.audio import audio_write
    model = build_debug_model(max_duration=1.0)
    model.set_generation_params(duration=2)  # README: duration=8 on a 30 s model; here past the 1 s segment
    assert list(model.generate_unconditional(4).shape) == [4, 1, 2 * SR]
    descriptions = ['happy rock', 'energetic EDM', 'sad jazz']
    wav = model.generate(descriptions)
    assert list(wav.shape) == [3, 1, 2 * SR]
    with pytest.raises(RuntimeError, match='melody'):
        model.generate_with_chroma(descriptions, torch.randn(1, SR)[None].expand(3, -1, -1), SR)
    for idx, one_wav in enumerate(wav):
        path = audio_write(str(tmp_path / f'{idx}'), one_wav.cpu(), model.sample_rate, strategy='loudness',
                           loudness_compressor=True)
        assert path.exists()
