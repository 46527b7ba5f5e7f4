"""Tag KL on musicnn: zero against itself, larger between genres of real music than within one."""
import torch

from audiocraft_mmd.music_quality.musicnn.embedding import load_audio
from audiocraft_mmd.music_quality.tag_kld import MusicnnKLDivergenceMetric, cross_kl_divergence, tag_distribution


def _batch(paths, seconds: float = 3.0):
    """[B, 1, T] first `seconds` of each file, with sizes and sample rates."""
    wavs, rates = [], []
    for path in paths:
        wav, rate = load_audio(path)
        wavs.append(wav.mean(0, keepdim=True)[:, :int(seconds * rate)])
        rates.append(rate)
    assert len(set(rates)) == 1 and len({w.shape[-1] for w in wavs}) == 1, "excerpts differ in rate or length"
    return torch.stack(wavs), torch.tensor([w.shape[-1] for w in wavs]), torch.tensor(rates)


def _kld(preds, targets, sizes, rates) -> float:
    metric = MusicnnKLDivergenceMetric()
    metric.update(preds, targets, sizes, rates)
    return metric.compute()['kld']


def test_between_genres_exceeds_within_genre(recorded_music):
    assert {'rock', 'orchestral'} <= set(recorded_music), f"genres built: {sorted(recorded_music)}"
    orchestral, rock = recorded_music['orchestral'][:4], recorded_music['rock'][:2]
    assert len(orchestral) >= 3 and len(rock) == 2, f"orchestral {len(orchestral)}, rock {len(rock)} pieces"
    wav_o, sizes_o, rates_o = _batch(orchestral)
    wav_r, sizes_r, rates_r = _batch(rock)
    self_kl = _kld(wav_o, wav_o, sizes_o, rates_o)
    assert abs(self_kl) < 1e-3, self_kl  # only audiocraft's 1e-6 epsilon is left (-50 eps)
    within = _kld(wav_o.roll(1, 0), wav_o, sizes_o, rates_o)  # each piece against another orchestral one
    between = _kld(wav_r.repeat(2, 1, 1)[:len(orchestral)], wav_o, sizes_o, rates_o)
    assert between > 2 * within > 0, f"KL within orchestral {within:.3f}, orchestral vs rock {between:.3f}"


def test_tag_distribution_and_cross_kl():
    probs = torch.rand(4, 50, generator=torch.Generator().manual_seed(0))
    dist = tag_distribution(probs)
    torch.testing.assert_close(dist.sum(), torch.tensor(1.))
    torch.testing.assert_close(dist, probs.mean(0) / probs.mean(0).sum())
    p = torch.softmax(torch.randn(3, 50, generator=torch.Generator().manual_seed(1)), -1)
    q = torch.softmax(torch.randn(2, 50, generator=torch.Generator().manual_seed(2)), -1)
    kl = cross_kl_divergence(p, q)
    expected = (p[1] * (p[1].log() - (q[0] + 1e-6).log())).sum()
    torch.testing.assert_close(kl[1, 0], expected.double(), atol=1e-6, rtol=0)
    assert kl.shape == (3, 2) and (kl > 0).all()
    assert cross_kl_divergence(p, p).diagonal().abs().max() < 1e-4
