"""audiocraft_mmd.data.audio_input: one segmenter, and the rule for the last short piece of a file."""
import torch

from audiocraft_mmd.data.audio_input import Entry, batch_segments, cut_segments, missing_seconds


def test_tail_is_kept_only_from_min_length():
    wav = torch.arange(23.).reshape(1, 23)
    assert [s.shape[-1] for s in cut_segments(wav, 10, min_length=3)] == [10, 10, 3]
    assert [s.shape[-1] for s in cut_segments(wav, 10, min_length=4)] == [10, 10]
    assert [s.shape[-1] for s in cut_segments(wav, 10, min_length=10)] == [10, 10]
    assert torch.equal(torch.cat(cut_segments(wav, 10, min_length=1), dim=-1), wav)  # in order, nothing padded


def test_batches_keep_full_segments_together_and_tails_alone():
    waves = [torch.zeros(1, 25), torch.ones(1, 20)]
    shapes = [tuple(b.shape) for b in batch_segments(waves, 10, min_length=5, batch_size=3)]
    # the tail of the first wave comes as soon as that wave is cut, full segments in batches of 3
    assert shapes == [(1, 1, 5), (3, 1, 10), (1, 1, 10)]


def test_missing_seconds_against_the_manifest():
    wav = torch.zeros(1, 8000)
    assert missing_seconds(Entry('a.wav', 8000, 2.0), wav, 8000) == 1.0
    assert missing_seconds(Entry('a.wav', 8000, 1.01), wav, 8000) == 0.  # within the tolerance
    assert missing_seconds(Entry('a.wav', None, None), wav, 8000) == 0.
