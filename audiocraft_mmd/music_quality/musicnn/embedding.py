"""Audio -> musicnn embeddings and tag probabilities, with musicnn's preprocessing in float32.

Preprocessing (musicnn's `extractor.batch_data`, made float32): mono, resampled to 16 kHz (julius);
power mel spectrogram with FFT 512, hop 256, periodic Hann window, centered frames with reflect
padding (librosa 0.7's default, which musicnn 0.1.0 used), 96 Slaney-scale mel bands with Slaney
area normalisation (librosa's default filterbank; torchaudio's `melscale_fbanks` with the same
options equals it to 1e-7); `log10(10000 x + 1)`; non-overlapping 3 s patches of 187 frames, the
incomplete tail dropped. musicnn casts the mel to float16 before the log, which overflows to inf on
loud input; we stay in float32.

Every waveform is checked first, and errors name the file: NaN/inf samples, sample rates below
16 kHz (upsampling cannot create the missing top band) or not matching what a manifest says, clips
shorter than one patch (`MIN_DURATION`, 2.976 s), and silence (peak below -80 dBFS) unless allowed.
"""
import copy
import math
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import julius
import torch
import torchaudio

from .model import N_FRAMES, N_MELS, pretrained_musicnn

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
MIN_DURATION = (N_FRAMES - 1) * HOP / SAMPLE_RATE  # centered frames: 1 + T // HOP >= 187
SILENCE_PEAK_DB = -80.0


class AudioError(ValueError):
    """Audio that musicnn cannot embed (the message names the file or waveform)."""


@dataclass
class MusicnnOutput:
    """Per-patch outputs for one clip: embeddings [N, 200] (penultimate layer) and tag
    probabilities [N, 50] (sigmoids), N = number of complete 3 s patches."""
    embeddings: torch.Tensor
    tag_probs: torch.Tensor


def mel_filterbank() -> torch.Tensor:
    """Slaney mel filterbank [257, 96] equal to librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).T."""
    return torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0., SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE,
                                                 norm='slaney', mel_scale='slaney')


def log_mel(wav: torch.Tensor, filterbank: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """musicnn's log-mel of 16 kHz audio. wav: [B, T] -> [B, 1 + T // 256, 96] (float32)."""
    filterbank = mel_filterbank() if filterbank is None else filterbank
    spec = torch.stft(wav.float(), N_FFT, HOP, window=torch.hann_window(N_FFT, device=wav.device),
                      center=True, pad_mode='reflect', return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2  # [B, 257, frames]
    mel = torch.matmul(power.transpose(1, 2), filterbank.to(wav.device))
    return torch.log10(10000 * mel + 1)


def to_patches(mel: torch.Tensor, hop: int = N_FRAMES) -> torch.Tensor:
    """187-frame patches every `hop` frames (default: non-overlapping, musicnn's default) of one
    log-mel [frames, 96] -> [N, 187, 96]; frames after the last complete patch are dropped."""
    assert mel.shape[0] >= N_FRAMES, f"log-mel [frames, bands] {tuple(mel.shape)} shorter than one patch"
    return mel.unfold(0, N_FRAMES, hop).transpose(1, 2)


def prepare_waveform(wav: torch.Tensor, sample_rate: int, name: str = '<waveform>',
                     allow_silence: bool = False) -> torch.Tensor:
    """Checked mono 16 kHz float32 waveform [T] from wav [T] or [C, T] at `sample_rate`.
    Raises `AudioError` naming `name` on NaN/inf, silence, a too-short clip or an unusable rate."""
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool):
        if not (isinstance(sample_rate, float) and sample_rate.is_integer()):
            raise AudioError(f"{name}: sample rate {sample_rate!r} is not an integer number of Hz")
        sample_rate = int(sample_rate)
    if sample_rate < SAMPLE_RATE:
        raise AudioError(f"{name}: sample rate {sample_rate} Hz is below musicnn's {SAMPLE_RATE} Hz "
                         "(upsampling cannot restore the missing band; embeddings would not be comparable)")
    if wav.dim() not in (1, 2):
        raise AudioError(f"{name}: expected a waveform [T] or [C, T], got shape {tuple(wav.shape)}")
    wav = wav.float()
    if not torch.isfinite(wav).all():
        raise AudioError(f"{name}: {int((~torch.isfinite(wav)).sum())} NaN/inf samples")
    wav = wav.mean(dim=0) if wav.dim() == 2 else wav
    duration = wav.shape[-1] / sample_rate
    if duration < MIN_DURATION:
        raise AudioError(f"{name}: {duration:.3f} s is shorter than one musicnn patch ({MIN_DURATION:.3f} s)")
    peak = float(wav.abs().max())
    if not allow_silence and peak < 10 ** (SILENCE_PEAK_DB / 20):
        peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
        raise AudioError(f"{name}: silent (peak {peak_db:.1f} dBFS < {SILENCE_PEAK_DB:.0f} dBFS)")
    if sample_rate != SAMPLE_RATE:
        wav = julius.resample_frac(wav, sample_rate, SAMPLE_RATE)
    return wav


def load_audio(path: tp.Union[str, Path]) -> tp.Tuple[torch.Tensor, int]:
    """(waveform [C, T] float32, sample rate) of an audio file; `AudioError` naming it on failure."""
    import soundfile
    try:
        data, sample_rate = soundfile.read(str(path), dtype='float32', always_2d=True)
        return torch.from_numpy(data.T.copy()), int(sample_rate)
    except Exception as soundfile_error:  # formats libsndfile lacks: audiocraft's reader (PyAV)
        try:
            from audiocraft.data.audio import audio_read
            wav, sample_rate = audio_read(str(path))
            return wav.float(), int(sample_rate)
        except Exception:
            raise AudioError(f"{path}: cannot read audio ({soundfile_error})") from soundfile_error


class MusicnnEmbedder:
    """Embeds waveforms with a pretrained musicnn ('MSD_musicnn' or 'MTT_musicnn').

    Args:
        model (str): checkpoint name in the `musicnn` wheel.
        batch_size (int): patches per network call (8 was fastest on one CPU core, benchmarks/bench_musicnn.py).
        hop_seconds (float): time between patch starts; 3.0 (one patch length, rounded to 187 frames)
            gives musicnn's non-overlapping patches, smaller values overlapping ones.
        device (str or torch.device): where the network runs.
    """
    def __init__(self, model: str = 'MSD_musicnn', batch_size: int = 8, hop_seconds: float = 3.0,
                 device: tp.Union[str, torch.device] = 'cpu'):
        self.model = model
        self.hop = min(N_FRAMES, max(1, round(hop_seconds * SAMPLE_RATE / HOP)))
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.net = pretrained_musicnn(model)
        if self.device.type != 'cpu':  # the cached CPU network is shared: move a copy
            self.net = copy.deepcopy(self.net).to(self.device)
        self.filterbank = mel_filterbank()

    @torch.inference_mode()
    def __call__(self, wav: torch.Tensor, sample_rate: int, name: str = '<waveform>',
                 allow_silence: bool = False) -> MusicnnOutput:
        """Outputs for one clip wav [T] or [C, T] at `sample_rate` (checked by `prepare_waveform`)."""
        wav = prepare_waveform(wav.detach().cpu(), sample_rate, name, allow_silence=allow_silence)
        patches = to_patches(log_mel(wav[None], self.filterbank)[0], self.hop)
        embeddings, probs = [], []
        for start in range(0, patches.shape[0], self.batch_size):
            logits, penultimate = self.net(patches[start:start + self.batch_size].to(self.device))
            embeddings.append(penultimate.cpu())
            probs.append(torch.sigmoid(logits).cpu())
        return MusicnnOutput(torch.cat(embeddings), torch.cat(probs))

    def embed_file(self, path: tp.Union[str, Path], expected_sample_rate: tp.Optional[int] = None,
                   allow_silence: bool = False) -> MusicnnOutput:
        """Outputs for an audio file; `expected_sample_rate` (e.g. from a manifest) must match the file's."""
        wav, sample_rate = load_audio(path)
        if expected_sample_rate is not None and int(expected_sample_rate) != sample_rate:
            raise AudioError(f"{path}: sample rate {sample_rate} Hz, but its manifest says {expected_sample_rate} Hz")
        return self(wav, sample_rate, name=str(path), allow_silence=allow_silence)
