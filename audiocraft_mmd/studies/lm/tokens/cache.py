"""Tokens of a codec on the files of a manifest, computed once and cached (the LMs of the study train on them).

A file is encoded whole (in chunks of `CHUNK_SECONDS`, so memory stays bounded), then cut into
non-overlapping windows of `frames` frames: `codes [N, K, frames]`. Training windows are crops of
these; evaluation uses every window, so every LM of a codec is scored on the same tokens.
"""
from pathlib import Path
import typing as tp

import torch

CHUNK_SECONDS = 10.0


@torch.no_grad()
def encode_file(codec: tp.Any, path: str, max_seconds: tp.Optional[float] = None) -> torch.Tensor:
    """codes [K, T] of one audio file (mono, at the codec's rate), at most `max_seconds` of it."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    wav, rate = audio_read(path, duration=max_seconds or -1.)
    wav = convert_audio(wav, rate, codec.sample_rate, codec.channels)
    chunk = int(CHUNK_SECONDS * codec.sample_rate)
    codes = [codec.encode(wav[None, :, i:i + chunk])[0][0] for i in range(0, wav.shape[-1], chunk)
             if wav.shape[-1] - i >= codec.sample_rate // int(codec.frame_rate)]
    return torch.cat(codes, dim=-1)


def windows(codes: torch.Tensor, frames: int) -> torch.Tensor:
    """Non-overlapping windows [N, K, frames] of codes [K, T] (the remainder dropped)."""
    n = codes.shape[-1] // frames
    return codes[:, :n * frames].reshape(codes.shape[0], n, frames).transpose(0, 1).contiguous()


def encode_manifest(codec: tp.Any, manifest: tp.Union[str, Path], max_seconds_per_file: tp.Optional[float] = None,
                    max_files: tp.Optional[int] = None) -> tp.List[torch.Tensor]:
    """codes [K, T_i] of each file of a manifest (in manifest order, the first `max_files`)."""
    from ....data.audio_input import load_entries
    entries = load_entries(manifest)[:max_files]
    if not entries:
        raise ValueError(f"{manifest}: no audio files")
    return [encode_file(codec, e.path, max_seconds_per_file) for e in entries]


def cached_tokens(path: Path, key: dict, make: tp.Callable[[], tp.Dict[str, tp.Any]]) -> tp.Dict[str, tp.Any]:
    """`make()` saved at `path` with `key`, reused while the key is the same."""
    if path.exists():
        data = torch.load(path, weights_only=True)
        if data.get('key') == key:
            return data['tokens']
    tokens = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'key': key, 'tokens': tokens}, path)
    return tokens
