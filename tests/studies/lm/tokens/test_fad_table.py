"""fad_table's per-study rows: which LMs get a row, how long their generations are, what the report reads back."""
import json
import types

import pytest
import torch

from audiocraft_mmd.studies.lm.tokens.fad_table import SAMPLE_RATE, study_rows
from audiocraft_mmd.studies.lm.tokens.lm import LMConfig, build_lm
from audiocraft_mmd.studies.lm.tokens.resume import run_path

PATCH = SAMPLE_RATE // 10  # the fake embedder's patch: 0.1 s


class FakeCodec:
    """K = 2 codebooks of 8 codes at 50 frames/s: a frame's audio is a constant set by its codes."""
    num_codebooks, cardinality, frame_rate, sample_rate = 2, 8, 50, SAMPLE_RATE
    hop = SAMPLE_RATE // 50

    def encode(self, x):
        frames = x[..., :x.shape[-1] // self.hop * self.hop].reshape(*x.shape[:2], -1, self.hop).abs().mean(-1)
        codes = (frames * 20).long().clamp(0, 7)
        return codes.expand(-1, self.num_codebooks, -1), None

    def decode(self, codes, scale=None):
        level = codes.float().mean(1, keepdim=True) / 8  # [B, 1, T]
        return level.repeat_interleave(self.hop, -1) * torch.sin(torch.arange(codes.shape[-1] * self.hop) * 0.3)


class FakeEmbedder:
    """Per 0.1 s patch: 4 statistics of the audio (no musicnn in this test)."""
    def model(self, wav, sample_rate, name=''):
        x = wav.reshape(-1)[:wav.shape[-1] // PATCH * PATCH].reshape(-1, PATCH)
        feats = torch.stack([x.abs().mean(-1), x.std(-1), x.diff().abs().mean(-1), x.max(-1).values], -1)
        return types.SimpleNamespace(embeddings=feats)

    def clips(self, clips, sample_rate):
        return torch.cat([self.model(c, sample_rate).embeddings for c in clips])


def _study(tmp_path, patterns):
    for pattern in patterns:
        lm = build_lm(pattern, FakeCodec.num_codebooks, FakeCodec.cardinality, LMConfig())
        path = run_path(tmp_path, 'mmd', pattern, 3).with_suffix('.pt')
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(lm.state_dict(), path)
    return tmp_path


def test_rows_of_a_study_and_the_fad_written_beside_each_lm(tmp_path):
    study = _study(tmp_path, ['delay'])  # the flatten LM has no weights here: no row, no file
    g = torch.Generator().manual_seed(0)
    waves = [torch.rand(1, SAMPLE_RATE, generator=g) * 0.3 for _ in range(3)]
    emb = FakeEmbedder()
    reference = torch.cat([emb.model(w, SAMPLE_RATE).embeddings for w in waves]) + 0.01
    clips, seconds = 4, 0.5  # 25 frames: past the LM's 16-frame window, so audiocraft's extension runs
    rows = study_rows('mmd', 3, FakeCodec(), study, ['delay', 'flatten'], reference, waves, emb, clips, seconds)
    assert [(r['set'], r['kind']) for r in rows] == [
        ('mmd seed 3: reconstructions of the held-out pieces', 'codec'),
        ('mmd seed 3: delay LM generations', 'generation')]
    assert rows[0]['fad_patches'] == 3 * 10  # three 1 s pieces, reconstructed whole
    assert rows[1]['fad_patches'] == clips * int(seconds * 10)  # every clip as long as asked
    written = json.loads(run_path(study, 'mmd', 'delay', 3).with_name('mmd_delay_seed3_fad.json').read_text())
    assert written['metrics'] == {k: rows[1][k] for k in ('fad_inf', 'fad_inf_se', 'fad_full', 'flatness')}
    assert not run_path(study, 'mmd', 'flatten', 3).with_name('mmd_flatten_seed3_fad.json').exists()


def test_a_codec_at_another_rate_is_refused_by_name(tmp_path):
    codec = FakeCodec()
    codec.sample_rate = 16000
    with pytest.raises(ValueError, match='codec mmd seed 3 runs at 16000 Hz'):
        study_rows('mmd', 3, codec, tmp_path, ['delay'], torch.zeros(20, 4), [], FakeEmbedder(), 4, 0.5)
