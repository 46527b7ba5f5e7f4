"""The manifest check at solver start names each unusable file with its reason and refuses above the threshold."""
import json
import os

import numpy as np
import omegaconf
import pytest
import soundfile as sf

from audiocraft_mmd.config_validation import ConfigError
from audiocraft_mmd.data.audio_scan import write_marker
from audiocraft_mmd.data.manifest_check import check_datasource, check_manifest

RATE = 32000


def nan_inside(rng):
    """6 s of noise with NaN from 1.5 s to 4.5 s."""
    wav = 0.1 * rng.standard_normal(6 * RATE)
    wav[int(1.5 * RATE):int(4.5 * RATE)] = np.nan
    return wav


@pytest.fixture
def manifest(tmp_path):
    """A manifest of 2 good files (one at 16 kHz) and 4 bad ones (missing, corrupt, silent, NaN from 1.5 s to 4.5 s
    in a float WAV): folder, {name: path}."""
    rng = np.random.default_rng(0)
    files = {name: tmp_path / f'{name}.wav' for name in ('good', 'missing', 'corrupt', 'rate', 'silent', 'nan')}
    sf.write(files['good'], 0.1 * rng.standard_normal(RATE), RATE)
    files['corrupt'].write_bytes(b'RIFF' + rng.bytes(4000))
    sf.write(files['rate'], 0.1 * rng.standard_normal(16000), 16000)
    silent = np.zeros(4 * RATE)
    silent[:100] = 0.5  # a click at the start: the windows inside the file are silent
    sf.write(files['silent'], silent, RATE)
    sf.write(files['nan'], nan_inside(rng), RATE, subtype='FLOAT')
    folder = tmp_path / 'egs'
    folder.mkdir()
    with open(folder / 'data.jsonl', 'w') as out:
        for name, path in files.items():
            rate = 16000 if name == 'rate' else RATE
            out.write(json.dumps({'path': str(path), 'duration': 1.0, 'sample_rate': rate, 'amplitude': None,
                                  'weight': None, 'info_path': None}) + '\n')
    return folder, files


def test_each_bad_file_gets_its_reason(manifest):
    folder, files = manifest
    report = check_manifest(folder, RATE)
    assert report.total == 6
    reasons = {path: reason for path, reason in report.bad}
    assert str(files['good']) not in reasons
    assert str(files['rate']) not in reasons  # audiocraft's dataset resamples it
    assert report.resampled == 1
    assert reasons[str(files['missing'])] == 'missing'
    assert reasons[str(files['corrupt'])].startswith('does not decode')
    assert reasons[str(files['silent'])].startswith('silent')
    assert reasons[str(files['nan'])].startswith('non-finite samples (NaN/inf) at 1.50-4.50 s')
    assert report.bad_fraction == pytest.approx(4 / 6)
    assert report.scanned == 1  # only the float file is read through


def cfg_for(folder, fraction):
    return omegaconf.OmegaConf.create({'sample_rate': RATE, 'datasource': {'train': str(folder)},
                                       'manifest_check': {'enabled': True, 'max_bad_fraction': fraction}})


def test_refuses_above_threshold_and_lists_files(manifest):
    folder, files = manifest
    with pytest.raises(ConfigError) as error:
        check_datasource(cfg_for(folder, 0.5))
    message = str(error.value)
    assert '4 of 6 files of `datasource.train`' in message
    assert all(str(files[name]) in message for name in ('missing', 'corrupt', 'nan', 'silent'))
    assert str(files['good']) not in message and str(files['rate']) not in message


def test_below_threshold_warns_and_goes_on(manifest, caplog):
    folder, _ = manifest
    reports = check_datasource(cfg_for(folder, 0.9))
    assert len(reports[0].bad) == 4
    assert '4 of 6 files' in caplog.text


def test_bad_threshold_is_a_config_error(manifest):
    with pytest.raises(ConfigError, match='manifest_check.max_bad_fraction'):
        check_datasource(cfg_for(manifest[0], 1.5))


def test_a_missing_manifest_names_its_config_key(tmp_path):
    with pytest.raises(ConfigError, match=r'`datasource\.train=.*no_such_split'):
        check_datasource(cfg_for(tmp_path / 'no_such_split', 0.))


def test_a_builder_marker_spares_the_read_until_the_file_changes(tmp_path):
    """A float file the builder marked finite is not read through; once rewritten (new mtime/size), it is."""
    rng = np.random.default_rng(1)
    path = tmp_path / 'float.wav'
    sf.write(path, 0.1 * rng.standard_normal(6 * RATE), RATE, subtype='FLOAT')
    folder = tmp_path / 'egs'
    folder.mkdir()
    (folder / 'data.jsonl').write_text(json.dumps({'path': str(path), 'duration': 6.0, 'sample_rate': RATE}) + '\n')
    write_marker(folder, [str(path)])
    report = check_manifest(folder, RATE)
    assert (report.scanned, report.bad) == (0, [])
    sf.write(path, nan_inside(rng), RATE, subtype='FLOAT')  # the file changes after the build
    os.utime(path, ns=(1, 1))
    report = check_manifest(folder, RATE)
    assert report.scanned == 1
    assert report.bad[0][1].startswith('non-finite samples (NaN/inf) at 1.50-4.50 s')
