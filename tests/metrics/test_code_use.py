import pytest
import torch

from audiocraft_mmd.metrics.code_use import LIVE_ZERO_CODE_CHANGE, live_flags, zero_code_change


class _Codec(torch.nn.Module):
    """decode_latent: a lookup of 16 random 3-d entries; decoder: the module given."""

    def __init__(self, decoder: torch.nn.Module):
        super().__init__()
        self.table = torch.nn.Embedding(16, 3)
        self.decoder = decoder

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        return self.table(codes[:, 0]).transpose(1, 2)  # [B, 3, T]


class _Constant(torch.nn.Module):
    def forward(self, emb):
        return torch.ones(emb.shape[0], 1, emb.shape[-1]) * 0.3


def test_zero_code_change_tells_a_decoder_that_ignores_codes_from_one_that_uses_them():
    torch.manual_seed(0)
    codes = torch.randint(16, (4, 2, 10))
    ignoring = zero_code_change(_Codec(_Constant()), codes)
    linear = zero_code_change(_Codec(torch.nn.Conv1d(3, 1, 1, bias=False)), codes)
    assert torch.allclose(ignoring, torch.zeros(4))
    assert torch.allclose(linear, torch.ones(4), atol=1e-6)  # a linear decoder's output at 0 is 0
    biased = zero_code_change(_Codec(torch.nn.Conv1d(3, 1, 1)), codes)
    assert ((biased > 0) & torch.isfinite(biased)).all()


@pytest.mark.parametrize('metrics,flags', [
    ({'cross_corr': 0.29, 'min_usage': 0.25, 'zero_code_change': LIVE_ZERO_CODE_CHANGE}, (1., 1., 1., 1.)),
    ({'cross_corr': 0.3, 'min_usage': 0.5, 'zero_code_change': 0.9}, (0., 1., 1., 0.)),
    ({'cross_corr': 0.1, 'min_usage': 0.2, 'zero_code_change': 0.9}, (1., 0., 1., 0.)),
    ({'cross_corr': 0.1, 'min_usage': 0.5, 'zero_code_change': 0.49}, (1., 1., 0., 0.)),
])
def test_live_flags_report_each_criterion(metrics, flags):
    got = live_flags(metrics)
    assert (got['live_cross'], got['live_usage'], got['live_zero'], got['live']) == flags


def test_live_ignores_log_mel_quality_and_an_unmeasured_zero_test():
    got = live_flags({'logmel_corr': 0.5, 'cross_corr': 0.05, 'min_usage': 0.5})
    assert got == {'live_cross': 1., 'live_usage': 1., 'live': 1.}
    assert live_flags({'tc': 1.}) == {}
