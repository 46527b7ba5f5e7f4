"""Does a codec's decoder use its codes? Liveness metrics of a reconstruction.

A collapsed codec (the decoder ignores the codes) can show a falling MSSpec and a "modest" SI-SNR
while every output is the same sound. These numbers tell the two apart:

- `sisnr_db`: scale-invariant SNR of the output against its input, in dB (higher is better; audiocraft
  logs `sisnr` as the *negative* SI-SNR loss). A collapsed codec sits far below 0 dB.
- `logmel_corr`: Pearson correlation of the log-mel spectrogram of output and input, per clip.
  Near 0 (or at the value a constant output gets) when the output ignores its input.
- `cross_corr`: mean absolute waveform correlation between the outputs of *different* inputs: near 1
  when every output is the same sound, near `cross_corr_input` (the same for the inputs) when live.
- `rms_ratio`: output RMS over input RMS (a collapsed decoder often outputs near silence).
- `perplexity_k`: exp(entropy) of the code histogram of codebook k, and `min_usage`, the smallest
  perplexity as a fraction of the codebook size.
"""
import typing as tp

import torch
import torchaudio

# Thresholds of `looks_collapsed`, from CPU codecs on our music (docs/codec_collapse.md): collapsed ones
# measured output/output correlation 0.82-1.00 and SI-SNR -42 to -57 dB; live ones from step 100 on
# 0.03-0.10 and -10 to -2 dB. The log-mel correlation does not separate them early (a constant sound
# scores 0.66-0.70 against music, a young live codec 0.67-0.76), so it is reported but not a criterion.
COLLAPSE_CROSS_CORR = 0.5
COLLAPSE_SISNR_DB = -20.


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of a, b: [N, L] -> [N]."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    denom = (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return (a * b).sum(dim=-1) / denom


def sisnr_db(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB of each clip, estimate and reference [B, C, L] -> [B] (higher is better)."""
    est = estimate.flatten(1) - estimate.flatten(1).mean(dim=-1, keepdim=True)
    ref = reference.flatten(1) - reference.flatten(1).mean(dim=-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


class LogMel(torch.nn.Module):
    """log(mel + floor) of mono audio [B, C, L] -> [B, n_mels * frames] (channels averaged)."""

    def __init__(self, sample_rate: int, n_mels: int = 64, n_fft: int = 1024, hop_length: int = 256,
                 floor: float = 1e-5):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                                        n_mels=n_mels, f_min=20., power=2.)
        self.floor = floor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(x.mean(dim=1)) + self.floor).flatten(1)


def code_perplexity(codes: torch.Tensor, cardinality: int) -> torch.Tensor:
    """exp(entropy) of each codebook's code histogram, codes [B, K, T] -> [K] (1 = one code used)."""
    assert codes.dim() == 3, f"codes must be [B, K, T], got {tuple(codes.shape)}"
    per_book = codes.transpose(0, 1).reshape(codes.shape[1], -1).long()
    counts = torch.zeros(per_book.shape[0], cardinality, device=codes.device)
    counts.scatter_add_(1, per_book, torch.ones_like(per_book, dtype=counts.dtype))
    p = counts / counts.sum(dim=1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(dim=1)
    return entropy.exp()


class Liveness:
    """Accumulates liveness statistics of (input, output, codes) batches; `compute()` returns the means.

    Args:
        sample_rate: of the audio.
        cardinality: codebook size, for the code histograms (None: a codec without codes; `update` takes
            codes=None).
    """

    def __init__(self, sample_rate: int, cardinality: tp.Optional[int]):
        self.logmel = LogMel(sample_rate)
        self.cardinality = cardinality
        self.reset()

    def reset(self) -> None:
        self._sums: tp.Dict[str, float] = {}
        self._counts: tp.Dict[str, int] = {}
        self._codes: tp.List[torch.Tensor] = []

    def _add(self, key: str, values: torch.Tensor) -> None:
        self._sums[key] = self._sums.get(key, 0.) + float(values.double().sum())
        self._counts[key] = self._counts.get(key, 0) + values.numel()

    @staticmethod
    def _cross(y: torch.Tensor) -> torch.Tensor:
        """|corr| of the waveforms of every pair of distinct clips of y [B, C, L] -> [B * (B - 1) / 2]."""
        flat = y.flatten(1)
        flat = flat - flat.mean(dim=-1, keepdim=True)
        flat = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        corr = flat @ flat.t()
        i, j = torch.triu_indices(len(y), len(y), offset=1)
        return corr[i, j].abs()

    @torch.no_grad()
    def update(self, reference: torch.Tensor, estimate: torch.Tensor, codes: tp.Optional[torch.Tensor]) -> None:
        """reference, estimate: [B, C, L]; codes: [B, K, T] (or None)."""
        assert reference.shape == estimate.shape, \
            f"reference {tuple(reference.shape)} and estimate {tuple(estimate.shape)} differ"
        reference, estimate = reference.float().cpu(), estimate.float().cpu()
        self._add('sisnr_db', sisnr_db(estimate, reference))
        rms = estimate.flatten(1).pow(2).mean(-1).sqrt() / reference.flatten(1).pow(2).mean(-1).sqrt().clamp_min(1e-8)
        self._add('rms_ratio', rms)
        self._add('logmel_corr', _pearson(self.logmel(estimate), self.logmel(reference)))
        if len(reference) > 1:
            self._add('cross_corr', self._cross(estimate))
            self._add('cross_corr_input', self._cross(reference))
        if codes is not None:
            assert self.cardinality is not None, "codes given to a Liveness built without a cardinality"
            self._codes.append(codes.detach().cpu())

    def compute(self) -> tp.Dict[str, float]:
        out = {key: self._sums[key] / self._counts[key] for key in self._sums}
        if self._codes:
            perplexity = code_perplexity(torch.cat(self._codes), self.cardinality)
            out.update({f'perplexity_{k}': float(p) for k, p in enumerate(perplexity)})
            out['min_usage'] = float(perplexity.min()) / self.cardinality
        return out


def looks_collapsed(metrics: tp.Mapping[str, float]) -> tp.Optional[str]:
    """A sentence saying why `metrics` (from `Liveness.compute`) look like a collapsed codec, else None."""
    reasons = []
    if metrics.get('sisnr_db', 0.) < COLLAPSE_SISNR_DB:
        reasons.append(f"SI-SNR {metrics['sisnr_db']:.1f} dB < {COLLAPSE_SISNR_DB:g} dB")
    if metrics.get('cross_corr', 0.) > COLLAPSE_CROSS_CORR:
        reasons.append(f"outputs of different inputs correlate at {metrics['cross_corr']:.2f} > {COLLAPSE_CROSS_CORR}")
    perplexities = [v for k, v in metrics.items() if k.startswith('perplexity_')]
    if perplexities and min(perplexities) < 2.:
        reasons.append("a codebook uses about one code (perplexity < 2)")
    return '; '.join(reasons) or None
