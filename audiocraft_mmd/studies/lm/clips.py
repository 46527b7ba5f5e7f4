"""Random clips of real audio: the LM study's real-data floor and reference sets (both engines)."""
from pathlib import Path
import typing as tp

import torch


def random_clips(manifest: tp.Union[str, Path], num_clips: int, seconds: float, sample_rate: int,
                 channels: int = 1, seed: int = 0) -> torch.Tensor:
    """`num_clips` clips [N, C, L] of `seconds` cropped from the audio files of a manifest (file and offset
    drawn from `seed`)."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from ...data.audio_input import load_entries
    entries = [e for e in load_entries(manifest) if e.duration is None or e.duration > seconds]
    if not entries:
        raise ValueError(f"no file of {manifest} is longer than {seconds} s")
    rng = torch.Generator().manual_seed(seed)
    length = int(round(seconds * sample_rate))
    clips = []
    for _ in range(num_clips):
        entry = entries[int(torch.randint(len(entries), (1,), generator=rng))]
        offset = float(torch.rand(1, generator=rng)) * max((entry.duration or seconds) - seconds, 0.)
        wav, rate = audio_read(entry.path, seek_time=offset, duration=seconds, pad=True)
        clips.append(convert_audio(wav, rate, sample_rate, channels)[..., :length])
    return torch.stack(clips)
