"""Estimators of codebook dependence against closed forms (tolerances derived from N)."""
import math

import pytest
import torch

from audiocraft_mmd.metrics import (codebook_mutual_information, delay_align, pairwise_total_correlation,
                                    total_correlation)
from audiocraft_mmd.metrics import information as info


def noisy_copy(M: int, N: int, rho: float, seed: int):
    """A uniform on M symbols, B = A with probability rho, else an independent uniform symbol."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, M, (N,), generator=g)
    other = torch.randint(0, M, (N,), generator=g)
    b = torch.where(torch.rand(N, generator=g) < rho, a, other)
    return a, b


def analytic_noisy_copy(M: int, rho: float):
    """Closed form of I(A; B), H(A, B), Var[log p(a,b) / p(a)p(b)] and Var[log p(a, b)] of `noisy_copy`."""
    q = rho + (1 - rho) / M  # P(B = a | A = a)
    r = (1 - rho) / M        # P(B = b | A = a), b != a
    h_b_given_a = -(q * math.log(q) + (M - 1) * r * math.log(r)) if r > 0 else -q * math.log(q)
    mi = math.log(M) - h_b_given_a
    log_ratio_diag, log_ratio_off = math.log(q * M), (math.log(r * M) if r > 0 else 0.0)
    var = q * log_ratio_diag ** 2 + (1 - q) * log_ratio_off ** 2 - mi ** 2
    h_ab = math.log(M) + h_b_given_a
    log_p_diag, log_p_off = math.log(q / M), (math.log(r / M) if r > 0 else 0.0)
    var_h = q * log_p_diag ** 2 + (1 - q) * log_p_off ** 2 - h_ab ** 2
    return mi, h_ab, var, var_h


@pytest.mark.parametrize('rho', [0.0, 0.25, 0.5, 0.9])
def test_noisy_copy_matches_closed_form(rho):
    M, N = 16, 200_000
    a, b = noisy_copy(M, N, rho, seed=1)
    codes = torch.stack([a, b])[None]
    out = total_correlation(codes, M)
    mi, h_ab, var, var_h = analytic_noisy_copy(M, rho)
    # Plug-in bias (M - 1)^2 / (2N): all M^2 joint cells have positive mass when rho < 1.
    # Std: delta method sqrt(Var/N) plus the chi-square spread (M - 1) / (sqrt(2) N) of the null.
    bias = (M - 1) ** 2 / (2 * N)
    sd = math.sqrt(var / N + ((M - 1) / (math.sqrt(2) * N)) ** 2)
    tol = 5 * sd + 0.2 * bias  # 0.2 * bias: second-order terms of the bias expansion
    assert out['pairs'] == [(0, 1)] and out['n_frames'] == N
    assert abs(out['mi'][0] - (mi + bias)) < tol
    assert abs(out['mi_mm'][0] - mi) < tol
    # I/H with I <= H: the ratio moves by at most (dI + dH) / H; H(A, B) plug-in bias is -(M^2 - 1) / (2N).
    tol_h = (M ** 2 - 1) / (2 * N) + 5 * math.sqrt(var_h / N)
    assert abs(out['mean'] - 100 * mi / h_ab) < 100 * (tol + bias + tol_h) / h_ab
    assert out['std'] == 0.0


def test_independent_codes_bias_and_miller_madow():
    M, N = 16, 200_000
    g = torch.Generator().manual_seed(2)
    codes = torch.randint(0, M, (4, 3, N // 4), generator=g)
    out = total_correlation(codes, M, num_pairs=3)
    bias = (M - 1) ** 2 / (2 * N)
    sd = (M - 1) / (math.sqrt(2) * N)  # 2 N I ~ chi2((M - 1)^2) under independence
    for mi, mi_mm in zip(out['mi'], out['mi_mm']):
        assert 0 <= mi < bias + 5 * sd
        assert abs(mi - bias) < 5 * sd + 0.2 * bias
        assert abs(mi_mm) < mi / 5  # Miller-Madow removes the first-order bias
    assert 0 < out['mean'] < 100 * (bias + 5 * sd) / (2 * math.log(M) - 0.01)
    assert abs(out['mean_mm']) < out['mean']


def test_relabeling_is_invariant():
    M = 16
    g = torch.Generator().manual_seed(3)
    a, b = noisy_copy(M, 20_000, 0.5, seed=3)
    c = (a + torch.randint(0, 2, a.shape, generator=g)) % M
    codes = torch.stack([a, b, c]).view(3, 4, -1).transpose(0, 1)  # [4, 3, 5000]
    relabeled = torch.stack([torch.randperm(M, generator=g)[codes[:, k]] for k in range(3)], dim=1)
    assert not torch.equal(codes, relabeled)
    for delay in [False, True]:
        ref, new = total_correlation(codes, M, delay=delay), total_correlation(relabeled, M, delay=delay)
        for key in ['mean', 'std', 'mean_mm', 'std_mm', 'values', 'values_mm', 'mi', 'mi_mm']:
            assert torch.allclose(torch.tensor(ref[key]), torch.tensor(new[key]), rtol=1e-10, atol=1e-12), key
        assert torch.allclose(pairwise_total_correlation(codes, M, delay=delay),
                              pairwise_total_correlation(relabeled, M, delay=delay), rtol=1e-10)
        assert torch.allclose(codebook_mutual_information(codes, M, delay=delay),
                              codebook_mutual_information(relabeled, M, delay=delay), rtol=1e-10)


def test_delay_align_definition():
    B, K, T = 2, 3, 7
    codes = torch.arange(B * K * T).view(B, K, T)
    out = delay_align(codes)
    assert out.shape == (B, K, T - K + 1)
    for k in range(K):
        for j in range(T - K + 1):
            assert torch.equal(out[:, k, j], codes[:, k, j + (K - 1) - k])
    # aligned frame j holds (c_0[t], c_1[t - 1], c_2[t - 2]) with t = j + K - 1
    assert out[0, :, 0].tolist() == [codes[0, 0, 2], codes[0, 1, 1], codes[0, 2, 0]]
    assert delay_align(codes[..., :2]).shape == (B, K, 0)


def test_delay_variant_sees_dependence_across_the_delay():
    M, T = 16, 50_001
    g = torch.Generator().manual_seed(4)
    c0 = torch.randint(0, M, (2, T), generator=g)
    # c_1[t - 1] = c_0[t]: dependence only between the tokens the LM predicts at the same step.
    c1 = torch.cat([c0[:, 1:], torch.randint(0, M, (2, 1), generator=g)], dim=1)
    across = torch.stack([c0, c1], dim=1)
    same_frame = torch.stack([c0, c0], dim=1)
    null = 100 * 5 * (M - 1) ** 2 / (2 * 2 * T) / (2 * math.log(M))  # 5x the plug-in bias, in %
    assert total_correlation(across, M)['mean'] < null
    assert total_correlation(across, M, delay=True)['mean'] == pytest.approx(100.0)
    assert total_correlation(same_frame, M)['mean'] == pytest.approx(100.0)
    assert total_correlation(same_frame, M, delay=True)['mean'] < null


def test_codebook_mi_three_codebooks_closed_form():
    M, N = 8, 100_000
    g = torch.Generator().manual_seed(5)
    c0, c1 = torch.randint(0, M, (2, N), generator=g)
    # C_2 = C_0 + C_1 mod M: any two determine the third, each is uniform -> I(C_k; C_-k) = log M.
    codes = torch.stack([c0, c1, (c0 + c1) % M])[None]
    mi = codebook_mutual_information(codes, M)
    assert torch.allclose(mi, torch.full((3,), math.log(M), dtype=torch.float64), atol=0.01)
    # C_2 = C_0 mod 2: I(C_0; C_1, C_2) = log 8 - log 4, I(C_1; ...) = 0, I(C_2; ...) = H(C_2) = log 2.
    codes = torch.stack([c0, c1, c0 % 2])[None]
    stats = info.codebook_statistics(info.states_from_codes(codes, M))
    expected = torch.tensor([math.log(2), 0.0, math.log(2)], dtype=torch.float64)
    # bias <= (64 - 8 - 8 + 1) / (2N) = 2.5e-4 nats, sd ~ 1e-4
    assert torch.allclose(stats['mi'], expected, atol=2e-3)
    assert torch.allclose(stats['mi_mm'], expected, atol=2e-3)
    assert stats['usage'].tolist() == [1.0, 1.0, 0.25]
    assert stats['perplexity'][2].item() == pytest.approx(2.0, rel=1e-3)


def test_multi_word_keys_are_exact():
    # K log2(M) = 4 x 20 bits > 62: the joint states span two int64 words.
    M_small, M_large = 16, 2 ** 20
    assert info.num_key_words(4, M_large) == 2
    g = torch.Generator().manual_seed(6)
    a, b = noisy_copy(M_small, 40_000, 0.5, seed=6)
    c = torch.randint(0, M_small, a.shape, generator=g)
    codes = torch.stack([a, b, c, (a + c) % M_small]).view(4, 8, -1).transpose(0, 1)
    frames = info.codes_to_frames(codes)
    assert torch.equal(info.unpack_keys(info.pack_codes(frames, M_large), 4, M_large), frames)
    assert torch.allclose(codebook_mutual_information(codes, M_small), codebook_mutual_information(codes, M_large))
    assert torch.allclose(pairwise_total_correlation(codes, M_small), pairwise_total_correlation(codes, M_large))


def test_pairs_protocol():
    pairs = info.sample_pairs(4, 5, seed=0)
    assert len(set(pairs)) == 5 and all(i < j < 4 for i, j in pairs)
    assert pairs == info.sample_pairs(4, 5, seed=0)
    assert len({tuple(info.sample_pairs(8, 5, seed=s)) for s in range(5)}) > 1
    assert info.sample_pairs(3, 5) == [(0, 1), (0, 2), (1, 2)]
    codes = torch.randint(0, 4, (1, 3, 100))
    assert total_correlation(codes, 4)['pairs'] == [(0, 1), (0, 2), (1, 2)]
    matrix = pairwise_total_correlation(codes, 4)
    assert matrix.shape == (3, 3) and torch.equal(matrix, matrix.T) and (matrix.diagonal() == 100).all()


def test_validation_errors():
    with pytest.raises(ValueError, match='dtype'):
        total_correlation(torch.rand(1, 2, 10), 4)
    with pytest.raises(ValueError, match=r'\(2, 10\)'):
        total_correlation(torch.zeros(2, 10, dtype=torch.long), 4)
    with pytest.raises(ValueError, match='code value 4'):
        total_correlation(torch.full((1, 2, 10), 4), 4)
    with pytest.raises(ValueError, match='code value -1'):
        codebook_mutual_information(torch.full((1, 2, 10), -1), 4)
    with pytest.raises(ValueError, match='K=1'):
        pairwise_total_correlation(torch.zeros(1, 1, 10, dtype=torch.long), 4)
    with pytest.raises(ValueError, match='no frame'):
        total_correlation(torch.zeros(1, 4, 3, dtype=torch.long), 4, delay=True)


def test_entropy_from_counts():
    h, h_mm = info.entropy_from_counts(torch.tensor([5, 5, 0, 0]))
    assert h == pytest.approx(math.log(2)) and h_mm == pytest.approx(math.log(2) + 1 / 20)
    assert info.entropy_from_counts(torch.tensor([7, 0])) == (0.0, 0.0)
