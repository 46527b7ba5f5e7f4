import pytest
import torch

from audiocraft_mmd.studies.lm.tokens.report import codec_records
from audiocraft_mmd.models.fingerprint import (ISA_VARIABLES, checkpoint_fingerprint, platform_fingerprint,
                                               state_fingerprint)


def _state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {'conv.weight': torch.randn(4, 3, generator=g), 'conv.bias': torch.randn(4, generator=g),
            'codebook.embed': torch.randn(8, 2, generator=g).to(torch.bfloat16), 'step': torch.tensor(3)}


def test_same_weights_same_fingerprint_whatever_the_order_or_layout():
    state = _state()
    reordered = {k: state[k] for k in reversed(list(state))}
    reordered['conv.weight'] = state['conv.weight'].t().contiguous().t()  # same values, column-major storage
    assert not reordered['conv.weight'].is_contiguous()
    assert state_fingerprint(reordered) == state_fingerprint(state)


@pytest.mark.parametrize('change', ['one_ulp', 'bfloat16_ulp', 'name', 'shape', 'dtype'])
def test_any_change_of_a_weight_changes_the_fingerprint(change):
    state, other = _state(), dict(_state())
    if change == 'one_ulp':
        other['conv.bias'] = other['conv.bias'].clone()
        other['conv.bias'][1] = torch.nextafter(other['conv.bias'][1], torch.tensor(float('inf')))
    elif change == 'bfloat16_ulp':
        bits = other['codebook.embed'].view(torch.int16).clone()
        bits[0, 0] += 1
        other['codebook.embed'] = bits.view(torch.bfloat16)
    elif change == 'name':
        other['conv.bias2'] = other.pop('conv.bias')
    elif change == 'shape':
        other['conv.weight'] = other['conv.weight'].reshape(3, 4)
    else:
        other['step'] = other['step'].to(torch.int32)
    assert state_fingerprint(other) != state_fingerprint(state)


def test_checkpoint_and_exported_package_fingerprint_their_model_weights(tmp_path):
    state = _state()
    torch.save({'best_state': {'model': state}, 'xp.cfg': 'solver: compression'}, tmp_path / 'checkpoint.th')
    torch.save({'best_state': state, 'exported': True, 'version': '1'}, tmp_path / 'package.th')
    assert checkpoint_fingerprint(tmp_path / 'checkpoint.th') == state_fingerprint(state)
    assert checkpoint_fingerprint(tmp_path / 'package.th') == state_fingerprint(state)
    torch.save({'best_state': {}}, tmp_path / 'empty.th')
    with pytest.raises(ValueError, match='empty.th holds no model weights'):
        checkpoint_fingerprint(tmp_path / 'empty.th')


def test_the_study_keeps_the_reproduction_s_fingerprint():
    runs = {('mmd', 0): {'sig': 'a', 'weights_sha256': 'f00d', 'metrics': {'tc_cond_delay': 7.0, 'other': 1.0}},
            ('mmd', 1): {'sig': 'b', 'metrics': {'tc_cond_delay': 7.5}}}
    rows = {r['seed']: r for r in codec_records(runs, seeds=[0, 1], codecs=['mmd'])}
    assert rows[0]['weights_sha256'] == 'f00d' and rows[0]['metrics'] == {'tc_cond_delay': 7.0}
    assert 'weights_sha256' not in rows[1]


def test_platform_names_the_dispatched_instruction_set_and_the_caps_set(monkeypatch):
    for name in ISA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('ATEN_CPU_CAPABILITY', 'avx2')
    found = platform_fingerprint()
    assert found['torch'] == torch.__version__
    assert found['cpu_capability'] == torch.backends.cpu.get_cpu_capability()  # of this process, set at start
    assert found['isa_caps'] == {'ATEN_CPU_CAPABILITY': 'avx2'}
    assert found['cpu']
