"""FAD: zero against itself, symmetric, order-invariant, monotone in degradation of real music,
rank-reduced across 2 gloo processes like in one, and the rank requirement of the CLI."""
import json

import pytest
import torch
import torch.multiprocessing as mp

from audiocraft_mmd.music_quality.fad import FrechetAudioDistanceMetric, frechet_audio_distance, main

DIM = 200


def embedding_statistics(embeddings: torch.Tensor):
    """Reference statistics, independent of the metric's running sums: (mean [D], torch.cov [D, D]) in float64."""
    x = embeddings.double()
    return x.mean(dim=0), torch.cov(x.T)


def _gaussian(n: int, seed: int, shift: float = 0.) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(DIM, DIM, generator=gen) / DIM ** 0.5
    return torch.randn(n, DIM, generator=gen) @ mixing + shift


def test_self_zero_symmetric_and_order_invariant():
    a, b = _gaussian(600, 0), _gaussian(500, 1, shift=0.1)
    stats_a, stats_b = embedding_statistics(a), embedding_statistics(b)
    assert abs(frechet_audio_distance(*stats_a, *stats_a)) < 1e-9 * stats_a[1].trace()
    ab, ba = frechet_audio_distance(*stats_a, *stats_b), frechet_audio_distance(*stats_b, *stats_a)
    assert ab > 1.0 and abs(ab - ba) < 1e-9 * ab, (ab, ba)
    metric = FrechetAudioDistanceMetric()
    perm = torch.randperm(600, generator=torch.Generator().manual_seed(2))
    for chunk in a[perm].split(77):  # shuffled, in uneven chunks, interleaved with the other set
        metric.update_embeddings(reference=chunk, generated=b[:0])
    metric.update_embeddings(generated=b)
    assert abs(metric.compute() - ab) < 1e-8 * ab


def test_fad_matches_the_closed_form_for_commuting_covariances():
    var1, var2 = torch.rand(DIM, dtype=torch.float64) + 0.5, torch.rand(DIM, dtype=torch.float64) + 0.5
    mu = torch.full((DIM,), 0.3, dtype=torch.float64)
    expected = (mu ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum()
    value = frechet_audio_distance(mu, torch.diag(var1), torch.zeros(DIM), torch.diag(var2))
    assert abs(value - float(expected)) < 1e-9


def test_too_few_embeddings_is_a_clear_error():
    metric = FrechetAudioDistanceMetric()
    metric.update_embeddings(reference=_gaussian(600, 0), generated=_gaussian(200, 1))
    with pytest.raises(ValueError, match=r'generated set has 200 embeddings; .* needs at least 201'):
        metric.compute()


def _rank_worker(rank: int, init_file: str, reference: torch.Tensor, generated: torch.Tensor, out: str) -> None:
    torch.distributed.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    metric = FrechetAudioDistanceMetric()
    metric.update_embeddings(reference=reference[rank::2], generated=generated[rank::2])
    torch.save({'fad': metric.compute(), 'local_count': int(metric.reference_count)}, f'{out}.{rank}')
    torch.distributed.destroy_process_group()


def test_two_rank_gloo_reduction_equals_single_process(tmp_path):
    reference, generated = _gaussian(401, 0), _gaussian(333, 1, shift=0.05)
    single = FrechetAudioDistanceMetric()
    single.update_embeddings(reference=reference, generated=generated)
    expected = single.compute()
    out, init = str(tmp_path / 'result'), str(tmp_path / 'init')
    other = mp.get_context('spawn').Process(target=_rank_worker, args=(1, init, reference, generated, out))
    other.start()  # rank 1 in a fresh process, rank 0 here (one process start instead of two)
    try:
        _rank_worker(0, init, reference, generated, out)
    finally:
        other.join(timeout=120)
    assert other.exitcode == 0, f"rank 1 exited with {other.exitcode}"
    for rank in (0, 1):
        result = torch.load(f'{out}.{rank}')
        assert abs(result['fad'] - expected) < 1e-9 * expected, (rank, result, expected)
        # after compute, torchmetrics restores the local (unsynced) state: each rank saw about half
        assert result['local_count'] == len(range(rank, 401, 2))


def _degrade(wav: torch.Tensor, rate: int, kind: str, level: float, seed: int) -> torch.Tensor:
    if kind == 'noise':  # white noise at `level` dB SNR
        noise = torch.randn(wav.shape, generator=torch.Generator().manual_seed(seed))
        return wav + noise * wav.pow(2).mean().sqrt() * 10 ** (-level / 20)
    import julius
    return julius.lowpass_filter(wav, level / rate)  # low-pass at `level` Hz


@pytest.fixture(scope='module')
def music_clips(recorded_music):
    """3 s (one patch) of each recorded piece at its own rate, and their embeddings."""
    from audiocraft_mmd.music_quality.musicnn.embedding import MusicnnEmbedder, load_audio
    embedder, clips = MusicnnEmbedder(), []
    for path in sorted(p for paths in recorded_music.values() for p in paths):
        wav, rate = load_audio(path)
        clips.append((wav.mean(0)[:3 * rate], rate))
    return embedder, clips, torch.cat([embedder(wav, rate).embeddings for wav, rate in clips])


@pytest.mark.parametrize('kind,levels', [('noise', (30., 10., -5.)), ('lowpass', (6000., 2500., 800.))])
def test_fad_grows_with_degradation(music_clips, kind, levels):
    embedder, clips, reference = music_clips
    # 8 patches: rank-7 covariances, so the FAD is the closed form between the empirical Gaussians, bias included
    stats = (reference.double().mean(0), torch.cov(reference.double().T))
    fads = []
    for level in levels:
        degraded = torch.cat([embedder(_degrade(wav, rate, kind, level, i), rate).embeddings
                              for i, (wav, rate) in enumerate(clips)])
        fads.append(frechet_audio_distance(*stats, degraded.double().mean(0), torch.cov(degraded.double().T)))
    assert 0 < fads[0] < fads[1] < fads[2], f"{kind} levels {levels}: FAD {fads}"


def test_cli_lists_bad_files_and_states_the_rank_requirement(tmp_path, recorded_music):
    import soundfile
    from audiocraft_mmd.music_quality.musicnn.embedding import load_audio
    generated = tmp_path / 'generated'
    generated.mkdir()
    wav, rate = load_audio(recorded_music['rock'][0])
    soundfile.write(generated / 'ok.wav', wav.T.numpy()[:4 * rate], rate)
    soundfile.write(generated / 'silent.wav', torch.zeros(4 * rate).numpy(), rate)
    soundfile.write(generated / 'nan.wav', torch.full((4 * rate,), float('nan')).numpy(), rate, subtype='FLOAT')
    soundfile.write(generated / 'low_rate.wav', wav.T.numpy()[:4 * 8000], 8000)
    reference = tmp_path / 'reference'
    reference.mkdir()
    soundfile.write(reference / 'a.wav', wav.T.numpy()[:7 * rate], rate)
    out = tmp_path / 'fad.json'
    code = main(['--reference', str(reference), '--generated', str(generated),
                 '--out', str(out)])
    result = json.loads(out.read_text())
    assert code == 1 and 'needs at least 201' in result['error']
    assert result['generated']['embedded_files'] == 1 and result['generated']['patches'] == 1
    skipped = '\n'.join(result['generated']['skipped'])
    for name, reason in (('silent.wav', 'silent'), ('nan.wav', 'NaN'), ('low_rate.wav', '8000 Hz is below')):
        assert f'{generated / name}: ' in skipped and reason in skipped, (name, skipped)
