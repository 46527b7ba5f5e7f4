"""Config validation at solver start: each bad key gives an error naming it, before any data loads.

The keys of the `mmd` block are checked by their owner, `losses.mmd_config.MMDConfig.parse`, called by
`solvers.compression_mmd.validate_config`, the solver name by `solvers.builders.validate_config`."""
import omegaconf
import pytest

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.solvers.builders import validate_config
from audiocraft_mmd.solvers.compression_mmd import validate_config as validate_mmd_config
from audiocraft_mmd.train import main


@pytest.fixture(scope='module')
def mmd_cfg():
    return main.get_xp(['solver=compression/encodec_mmd_debug', 'device=cpu']).cfg


def test_default_configs_are_valid(mmd_cfg):
    validate_config(mmd_cfg)
    for solver in ('compression/encodec_mmd_32khz', 'compression/encodec_mmd_parallel_32khz',
                   'compression/encodec_32khz', 'compression/debug'):
        validate_config(main.get_xp([f'solver={solver}']).cfg)


@pytest.mark.parametrize('key,value', [
    ('mmd.num_batches', 0),
    ('losses.mmd', -1.),
    ('mmd.kernel', 'gausian'),
    ('mmd.sigmas', [1., 0.]),
    ('mmd.sigmas', []),
    ('mmd.streams', 'codes'),
    ('mmd.normalize', 'batch'),
    ('mmd.max_rows', 1),
    ('mmd.block_size', 0),
    ('mmd.delay', 'yes'),
    ('mmd.exclude_shared', 'maybe'),
    ('mmd.shuffle', 'stratified'),
])
def test_bad_value_names_the_key(mmd_cfg, key, value):
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(mmd_cfg))
    omegaconf.OmegaConf.update(cfg, key, value, merge=False)
    with pytest.raises(ConfigError, match=key.replace('.', r'\.')):
        validate_mmd_config(cfg)


def test_squared_inverse_sigma_checked(mmd_cfg):
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(mmd_cfg))
    cfg.mmd.kernel = 'squared_inverse'
    cfg.mmd.sigma = -2.
    with pytest.raises(ConfigError, match=r'mmd\.sigma'):
        validate_mmd_config(cfg)


def test_unknown_mmd_key_is_a_typo(mmd_cfg):
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(mmd_cfg))
    cfg.mmd.num_batch = 3
    with pytest.raises(ConfigError, match='num_batch'):
        validate_mmd_config(cfg)


def test_delay_needs_two_codebooks(mmd_cfg):
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(mmd_cfg))
    cfg.rvq.n_q = 1
    with pytest.raises(ConfigError, match=r'rvq\.n_q'):
        validate_mmd_config(cfg)


def test_unknown_solver_named():
    with pytest.raises(ConfigError, match='solver'):
        validate_config(omegaconf.OmegaConf.create({'solver': 'compresion_mmd'}))


def test_quantizer_warmup_is_refused_outside_dac(mmd_cfg):
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(mmd_cfg))
    cfg.codec_training.quantizer_warmup = 10
    with pytest.raises(ConfigError, match=r"codec_training\.quantizer_warmup.*compression_model=dac only"):
        validate_config(cfg)
