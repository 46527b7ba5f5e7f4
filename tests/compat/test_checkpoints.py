"""audiocraft_mmd.compat.checkpoints: checkpoints that torch 2.11 loads safely, and //sig/ resolution."""
import pickle

import omegaconf
import pytest
import torch

from audiocraft_mmd.compat.checkpoints import (WeightsOnlyCheckpointMixin, checkpoint_config, load_state,
                                               resolve_checkpoint)


class _Stateful:
    """Stands for flashy's BaseSolver.state_dict: what flashy puts in a checkpoint."""
    def state_dict(self):
        cfg = omegaconf.OmegaConf.create({'solver': 'compression', 'sample_rate': 32000,
                                          'seanet': {'rate': '${sample_rate}'}})
        return {'xp.cfg': cfg, 'best_state': {'model': {'w': torch.ones(2)}}, 'history': [{'train': {'l1': 1.}}]}


class _Safe(WeightsOnlyCheckpointMixin, _Stateful):
    pass


def test_plain_flashy_state_does_not_load_weights_only(tmp_path):
    # The failure the mixin exists for: torch>=2.6 refuses DictConfig in weights_only mode.
    torch.save(_Stateful().state_dict(), tmp_path / 'ckpt.th')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'ckpt.th', weights_only=True)


def test_mixin_state_loads_weights_only_and_keeps_interpolations(tmp_path):
    torch.save(_Safe().state_dict(), tmp_path / 'ckpt.th')
    state = torch.load(tmp_path / 'ckpt.th', weights_only=True)
    cfg = checkpoint_config(state, tmp_path / 'ckpt.th')
    assert cfg.seanet.rate == 32000  # the interpolation survived as an interpolation
    assert torch.equal(state['best_state']['model']['w'], torch.ones(2))


def test_resolve_sig_in_our_dora_dir(dora_dir):
    xp = dora_dir / 'xps' / 'abc123'
    xp.mkdir(parents=True)
    (xp / 'checkpoint.th').write_bytes(b'')
    assert resolve_checkpoint('//sig/abc123') == xp / 'checkpoint.th'
    with pytest.raises(FileNotFoundError, match='zzz999'):
        resolve_checkpoint('//sig/zzz999')


def test_untrusted_pickled_file_is_refused_trusted_one_loads(tmp_path, dora_dir):
    outside = tmp_path / 'downloaded.th'
    torch.save(_Stateful().state_dict(), outside)
    with pytest.raises(RuntimeError, match='downloaded.th'):
        load_state(outside)
    inside = dora_dir / 'xps' / 'old' / 'checkpoint.th'
    inside.parent.mkdir(parents=True)
    torch.save(_Stateful().state_dict(), inside)
    assert isinstance(load_state(inside)['xp.cfg'], omegaconf.DictConfig)


def test_checkpoint_config_names_a_non_solver_file(tmp_path):
    with pytest.raises(ValueError, match='not a solver checkpoint'):
        checkpoint_config({'state_dict': {}}, tmp_path / 'weights.bin')
