"""CodeRestarts (`quantization/code_restarts.py`): when an entry is restarted (the EMA arithmetic), what it is
restarted with (a frame of its own stage's latents), and that picked entries are left alone."""
import math

import pytest
import torch

from audiocraft_mmd.quantization.code_restarts import CodeRestarts

BINS, DIM, B, T = 4, 3, 2, 18  # 36 frames per batch: m = 9 picks per entry on average


def _batch(stage_codes):
    """codes [B, K, T] where stage k picks the entries in stage_codes[k] in turn; latents [B, K * DIM, T]
    whose frames are all distinct (stage k's frames have first coordinate 1000 k + frame index)."""
    codes = torch.stack([torch.tensor(c).repeat(B * T)[:B * T].reshape(B, T) for c in stage_codes], dim=1)
    index = torch.arange(B * T, dtype=torch.float).reshape(B, T)
    latents = torch.zeros(B, len(stage_codes), DIM, T)
    for k in range(len(stage_codes)):
        latents[:, k, 0] = 1000 * k + index
    return codes, latents.reshape(B, -1, T)


def test_an_entry_never_picked_restarts_when_its_average_crosses_the_threshold():
    """Usage starts at the mean count m = 9 and decays as m * decay**n for an entry never picked: with decay
    0.9 and threshold 2 it crosses at n = ceil(log(m / 2) / log(1 / 0.9)) = 15 updates, not one earlier."""
    restarts = CodeRestarts(num_codebooks=2, codebook_size=BINS, decay=0.9, threshold=2.)
    codebooks = [torch.zeros(BINS, DIM), torch.zeros(BINS, DIM)]
    codes, latents = _batch([[0, 1, 2], [0, 1, 2, 3]])  # stage 0 never picks entry 3
    crossing = math.ceil(math.log(B * T / BINS / 2) / math.log(1 / 0.9))
    assert crossing == 15
    for update in range(1, crossing):
        assert restarts(codebooks, codes, latents).tolist() == [0, 0], update
    assert restarts(codebooks, codes, latents).tolist() == [1, 0]
    # the dead entry now holds one of stage 0's frames; the picked entries and stage 1 are untouched
    stage0 = latents[:, :DIM].transpose(1, 2).reshape(-1, DIM)
    assert any(torch.equal(codebooks[0][3], frame) for frame in stage0)
    assert torch.count_nonzero(codebooks[0][:3]) == 0 and torch.count_nonzero(codebooks[1]) == 0
    assert restarts.usage[0, 3].item() == pytest.approx(B * T / BINS), "reset to the batch's mean count"


def test_shapes_are_checked():
    restarts = CodeRestarts(num_codebooks=2, codebook_size=BINS)
    codes, latents = _batch([[0, 1], [0, 1], [0, 1]])
    with pytest.raises(ValueError, match='2 codebooks'):
        restarts([torch.zeros(BINS, DIM)] * 3, codes, latents)
    with pytest.raises(ValueError, match='decay'):
        CodeRestarts(2, BINS, decay=1.)
