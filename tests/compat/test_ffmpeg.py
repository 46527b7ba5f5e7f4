"""audiocraft_mmd.compat.ffmpeg: audiocraft's audio_write runs the locked ffmpeg on a machine whose PATH has none."""
import os

import pytest
import torch

from audiocraft_mmd.compat import ffmpeg


@pytest.fixture
def no_system_ffmpeg(tmp_path, monkeypatch):
    """PATH without any ffmpeg, and a venv bin/ folder holding the link that `make install` makes."""
    empty, venv_bin = tmp_path / 'empty', tmp_path / 'venv-bin'
    empty.mkdir()
    venv_bin.mkdir()
    monkeypatch.setenv('PATH', str(empty))
    monkeypatch.setattr(ffmpeg, 'venv_bin', lambda: venv_bin)
    return venv_bin


def test_audio_write_needs_an_ffmpeg_on_path_and_gets_the_linked_one(no_system_ffmpeg, tmp_path):
    from audiocraft.data.audio import audio_write
    wav = 0.1 * torch.randn(1, 3200, generator=torch.Generator().manual_seed(0))
    with pytest.raises(FileNotFoundError):  # audiocraft 1.3.0 without an ffmpeg on PATH
        audio_write(tmp_path / 'before', wav, 32000)
    assert ffmpeg.put_on_path() is None  # no link yet: nothing to add
    link = ffmpeg.link(no_system_ffmpeg)
    assert link.resolve() == ffmpeg.wheel_binary().resolve()
    assert ffmpeg.put_on_path() == str(link)
    assert os.environ['PATH'].split(os.pathsep) == [str(tmp_path / 'empty'), str(no_system_ffmpeg)]
    written = audio_write(tmp_path / 'after', wav, 32000)
    import soundfile
    data, rate = soundfile.read(written)
    assert rate == 32000 and data.shape == (3200,)


def test_an_ffmpeg_on_path_wins(no_system_ffmpeg, tmp_path, monkeypatch):
    ffmpeg.link(no_system_ffmpeg)
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'ffmpeg').symlink_to(ffmpeg.wheel_binary())
    monkeypatch.setenv('PATH', str(site))
    assert ffmpeg.put_on_path() == str(site / 'ffmpeg') and os.environ['PATH'] == str(site)
