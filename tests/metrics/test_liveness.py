"""Liveness metrics tell a codec that reconstructs from one that outputs the same sound for every input."""
import math

import torch

from audiocraft_mmd.metrics.liveness import Liveness, code_perplexity, looks_collapsed, sisnr_db

SR = 16000


def music_like(batch: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(SR // 2) / SR
    freqs = torch.rand(batch, 3, 1, generator=g) * 1500 + 100
    noise = 0.01 * torch.randn(batch, 1, len(t), generator=g)
    return 0.1 * torch.sin(2 * math.pi * freqs * t).sum(1, keepdim=True) + noise


def test_sisnr_db_sign_and_scale_invariance():
    x = music_like()
    assert torch.all(sisnr_db(x, x) > 60)
    noisy = x + 0.1 * x.std() * torch.randn_like(x)  # noise 20 dB below the signal
    assert torch.allclose(sisnr_db(3 * noisy, x), sisnr_db(noisy, x), atol=1e-3)
    assert torch.allclose(sisnr_db(noisy, x), torch.full((len(x),), 20.), atol=1.)


def test_code_perplexity_bounds():
    uniform = torch.arange(64).repeat(4, 2, 1)  # [B=4, K=2, T=64], every code equally often
    assert torch.allclose(code_perplexity(uniform, 64), torch.full((2,), 64.))
    assert torch.allclose(code_perplexity(torch.zeros(4, 2, 10, dtype=torch.long), 64), torch.ones(2))


def test_perfect_reconstruction_is_live():
    x = music_like()
    liveness = Liveness(SR, cardinality=8)
    liveness.update(x, x.clone(), torch.randint(0, 8, (len(x), 2, 25), generator=torch.Generator().manual_seed(0)))
    metrics = liveness.compute()
    assert metrics['logmel_corr'] > 0.999 and metrics['sisnr_db'] > 60
    assert abs(metrics['cross_corr'] - metrics['cross_corr_input']) < 1e-6
    assert looks_collapsed(metrics) is None


def test_same_output_for_every_input_is_collapsed():
    x = music_like()
    constant = music_like(batch=1, seed=1).expand_as(x).clone()  # one sound, whatever the input
    liveness = Liveness(SR, cardinality=8)
    liveness.update(x, constant, torch.zeros(len(x), 2, 25, dtype=torch.long))
    metrics = liveness.compute()
    assert metrics['cross_corr'] > 0.999
    assert metrics['perplexity_0'] == 1.
    reason = looks_collapsed(metrics)
    assert reason is not None and 'correlate' in reason and 'perplexity' in reason
