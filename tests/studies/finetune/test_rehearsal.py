"""finetune_rehearsal: frozen-part and token-change measures, the claim verdicts (margins by hand), and the hub cache
layout that `continue_from=//pretrained/ORG/NAME` finds offline."""
import math

import pytest
import torch

from audiocraft_mmd.studies.finetune.evaluation import frozen_difference, token_change
from audiocraft_mmd.models.hub_cache import publish
from audiocraft_mmd.studies.finetune.report import codec_claims, lm_claims


class _Codec(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(2, 2)
        self.quantizer = torch.nn.Linear(2, 2)
        self.decoder = torch.nn.Linear(2, 2)

    def encode(self, x):
        return (self.encoder(x.transpose(1, 2)).transpose(1, 2) > 0).long(), None


def test_frozen_difference_sees_the_decoder_and_codebooks_only():
    torch.manual_seed(0)
    a, b = _Codec(), _Codec()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.encoder.weight.add_(1.)
    assert frozen_difference(b, a) == 0.
    with torch.no_grad():
        b.decoder.bias[0] += 2 ** -20
    assert frozen_difference(b, a) == 2 ** -20


def test_token_change_counts_differing_codes():
    torch.manual_seed(0)
    a, b = _Codec(), _Codec()
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 2, 7)
    assert token_change(a, b, x, batch_size=2) == 0.
    with torch.no_grad():
        b.encoder.weight.neg_()
        b.encoder.bias.neg_()
    assert token_change(a, b, x, batch_size=2) == 1.  # every sign flips (no code exactly 0)


def _records(mode, metric, mmd, control):
    return [{'group': mode, 'label': label, 'seed': s, 'metrics': {metric: v, 'frozen_max_abs_diff': 0.}}
            for label, values in (('1e3', mmd), ('0', control)) for s, v in enumerate(values)]


def test_codec_claims_paired_verdicts_and_non_inferiority_margin():
    # d_s = -1, -2, -3: mean -2, SE = 1 / sqrt(3) = 0.577 -> |z| = 3.46 > 2: held
    claims = {c['id']: c for c in codec_claims(_records('encoder', 'tc_delay', [4., 4., 4.], [5., 6., 7.]))}
    assert claims['E1']['verdict'] == 'held'
    assert claims['E1']['diff'] == pytest.approx(-2.) and claims['E1']['se'] == pytest.approx(1 / math.sqrt(3))
    assert claims['E6']['verdict'] == 'held'
    # SI-SNR d_s = -0.1, -0.2, -0.3: d - 2 SE = -0.2 - 2 * 0.0577 = -0.315 > -0.5: held; shifted by -0.3: not held
    held = {c['id']: c for c in codec_claims(_records('encoder', 'si_snr_db', [0.9, 0.8, 0.7], [1., 1., 1.]))}
    assert held['E4']['verdict'] == 'held'
    failed = {c['id']: c for c in codec_claims(_records('encoder', 'si_snr_db', [0.6, 0.5, 0.4], [1., 1., 1.]))}
    assert failed['E4']['verdict'] == 'not held'  # d - 2 SE = -0.5 - 0.115 < -0.5


def test_bit_change_in_a_frozen_part_fails_e6():
    records = _records('encoder', 'tc', [1., 1., 1.], [1., 1., 1.])
    records[1]['metrics']['frozen_max_abs_diff'] = 1e-9
    assert {c['id']: c for c in codec_claims(records)}['E6']['verdict'] == 'not held'


def test_lm_claim_compares_continued_with_scratch():
    records = [{'label': label, 'seed': s, 'metrics': {'ce_per_frame': ce}}
               for label, values in (('continued', [10., 10.1, 10.2]), ('scratch', [11., 11.3, 11.1]),
                                     ('flatten', [9., 9., 9.])) for s, ce in enumerate(values)]
    (claim,) = lm_claims(records)
    assert claim['id'] == 'L1' and claim['verdict'] == 'held' and claim['diff'] == pytest.approx(-1.0333, abs=1e-3)


def test_published_folder_is_found_offline(tmp_path, offline_hub):
    from huggingface_hub import try_to_load_from_cache
    folder = tmp_path / 'model'
    folder.mkdir()
    (folder / 'config.json').write_text('{}')
    snapshot = publish(folder, offline_hub, 'org/name')
    assert publish(folder, offline_hub, 'org/name') == snapshot  # same files, same revision
    assert try_to_load_from_cache('org/name', 'config.json') == str(snapshot / 'config.json')
    with pytest.raises(FileNotFoundError):
        publish(tmp_path / 'empty', offline_hub, 'org/other') if (tmp_path / 'empty').mkdir() is None else None
