"""The environment check (audiocraft_mmd.doctor), on faked version metadata: no environment is built."""
import os

from audiocraft_mmd import doctor

LOCK = """\
# header comment
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:aaa
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:bbb
torch==2.11.0 \\
    --hash=sha256:ccc
    # via setup.cfg
torchaudio==2.11.0 \\
    --hash=sha256:ddd
Hydra_Core==1.3.8 \\
    --hash=sha256:eee
"""
# numpy's pin depends on the Python running the test (3.11 or 3.12), as in the real lock.
MATCHING = {'numpy': doctor.read_lock(LOCK)['numpy'], 'torch': '2.11.0', 'torchaudio': '2.11.0',
            'hydra-core': '1.3.8'}


def _undefined_symbol():
    # What torchaudio 2.11.1 raises next to torch 2.11.0 (issue 26): the loader's error, wrapped.
    try:
        raise OSError('libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace')
    except OSError as exc:
        raise OSError('Could not load this library: libtorchaudio.so') from exc


def test_read_lock_takes_the_pin_of_this_python_and_canonical_names():
    assert doctor.read_lock(LOCK, {'python_full_version': '3.11.7'})['numpy'] == '2.4.6'
    assert doctor.read_lock(LOCK, {'python_full_version': '3.12.3'})['numpy'] == '2.5.5'
    assert doctor.read_lock(LOCK)['hydra-core'] == '1.3.8'
    assert set(doctor.read_lock(LOCK)) == {'numpy', 'torch', 'torchaudio', 'hydra-core'}


def test_the_committed_lock_holds_the_decided_stack():
    pins = doctor.read_lock(doctor.LOCK_PATH.read_text())
    assert pins['torch'] == '2.11.0' and pins['torchaudio'] == '2.11.0'
    for nodeps in ('audiocraft', 'descript-audio-codec', 'descript-audiotools', 'musicnn', 'uv', 'pip'):
        assert nodeps in pins
    # every pin carries a hash (make install syncs with --require-hashes)
    text = doctor.LOCK_PATH.read_text().splitlines()
    for i, line in enumerate(text):
        if doctor._PIN.match(line):
            assert text[i + 1].strip().startswith('--hash=sha256:'), line


def test_matching_environment_is_ok():
    report = doctor.check(LOCK, dict(MATCHING), strict=True, probes={'torch': lambda: 'torch ok'})
    assert report.ok and report.ok_lines == ['torch ok']


def test_mismatched_torchaudio_prints_one_line_naming_the_pair_and_the_fix():
    versions = dict(MATCHING, torchaudio='2.11.1')
    report = doctor.check(LOCK, versions, strict=True, probes={'torchaudio': _undefined_symbol})
    assert len(report.lines) == 1, report.lines
    line = report.lines[0]
    assert 'torchaudio 2.11.1 next to torch 2.11.0 does not load' in line
    assert 'undefined symbol: torch_exception_get_what_without_backtrace' in line  # the root cause, unwrapped
    assert 'the lock pairs torchaudio 2.11.0 with torch 2.11.0' in line
    assert line.endswith('Fix: make sync (re-syncs .venv to requirements.lock)')


def test_version_drift_without_a_load_failure_is_still_an_error():
    report = doctor.check(LOCK, dict(MATCHING, torchaudio='2.11.1'), strict=False, probes={})
    assert report.lines == ['doctor: torchaudio 2.11.1 is installed next to torch 2.11.0; the lock has '
                            'torchaudio 2.11.0. Fix: make sync (re-syncs .venv to requirements.lock)']


def test_a_broken_pair_inside_the_lock_says_to_fix_the_lock():
    report = doctor.check(LOCK, dict(MATCHING), strict=True, probes={'torchaudio': _undefined_symbol})
    assert 'the lock itself holds a broken pair' in report.lines[0]


def test_missing_and_extra_packages():
    versions = {k: v for k, v in MATCHING.items() if k != 'hydra-core'}
    versions.update({'ipython': '9.0', doctor.PROJECT: '0.1.0'})
    lines = doctor.check(LOCK, versions, strict=False, probes={}).lines
    assert lines == ['doctor: hydra-core is not installed; the lock has 1.3.8. Fix: make sync (re-syncs .venv to '
                     'requirements.lock)']
    strict = doctor.check(LOCK, versions, strict=True, probes={}).lines
    assert len(strict) == 2 and 'the lock does not hold: ipython.' in strict[1]  # the project itself is not extra


def test_local_build_label_matches_its_release_only():
    assert doctor.same_release('2.11.0+cu130', '2.11.0')
    assert not doctor.same_release('2.11.1+cu130', '2.11.0')
    # a preinstalled GPU image: only what is installed is compared
    lines = doctor.check(LOCK, {'torch': '2.11.0+cu130', 'numpy': '2.2.0'}, strict=True, installed_only=True,
                         probes={}).lines
    assert len(lines) == 1 and lines[0].startswith('doctor: numpy 2.2.0 is installed')


def test_this_environment_equals_the_lock():
    # make test runs on the environment make install synced: it must be the lock, with every extension loading.
    report = doctor.check(doctor.LOCK_PATH.read_text(), doctor.installed_versions(), strict=False)
    assert report.ok, report.lines


def test_stand_ins_are_not_probed(capsys, monkeypatch):
    """On the GPU check machine xformers and av are import-only stand-ins (scripts/device_stubs): `--without`
    leaves them out of the probes instead of failing the stage on them; any other probe still runs."""
    ran = []
    monkeypatch.setattr(doctor, 'PROBES', {name: (lambda name=name: ran.append(name) or f'{name} ok')
                                           for name in ('torch', 'xformers', 'av')})
    monkeypatch.setattr(doctor, 'installed_versions', lambda: {})
    monkeypatch.setattr(doctor, 'TOOLS', {})
    assert doctor.main(['--installed-only', '--without', 'xformers', 'av', 'spacy']) == 0
    assert ran == ['torch']
    assert 'not probed (stand-ins on this machine): av, xformers' in capsys.readouterr().out


def _fake_binary(folder, name: str, script: str):
    path = folder / name
    path.write_text('#!/bin/sh\n' + script + '\n')
    path.chmod(0o755)
    return path


def test_ffmpeg_is_run_and_a_missing_one_names_the_fix(tmp_path, monkeypatch):
    from audiocraft_mmd.compat import ffmpeg
    monkeypatch.setattr(ffmpeg, 'venv_bin', lambda: tmp_path / 'venv-bin')  # no link there
    monkeypatch.setenv('PATH', str(tmp_path))
    report = doctor.check(None, {}, strict=False, probes={}, tools={'ffmpeg': doctor.TOOLS['ffmpeg']})
    assert report.lines == [f"doctor: no ffmpeg on PATH (audiocraft's audio_write pipes to it). Fix: {ffmpeg.FIX}"]
    _fake_binary(tmp_path, 'ffmpeg', 'echo "ffmpeg version 0-fake"; exit 3')
    report = doctor.check(None, {}, strict=False, probes={}, tools={'ffmpeg': doctor.TOOLS['ffmpeg']})
    assert len(report.lines) == 1 and f'{tmp_path}/ffmpeg -version exits 3' in report.lines[0]
    _fake_binary(tmp_path, 'ffmpeg', 'echo "ffmpeg version 0-fake"')
    report = doctor.check(None, {}, strict=False, probes={}, tools={'ffmpeg': doctor.TOOLS['ffmpeg']})
    assert report.ok and report.ok_lines == [f'ffmpeg version 0-fake ({tmp_path}/ffmpeg)']


NVIDIA_SMI_12_4 = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+"""


def test_an_old_driver_fails_the_doctor_naming_the_wheel_index(tmp_path, monkeypatch, capsys):
    """A faked nvidia-smi of a CUDA 12.4 driver, next to the locked torch's CUDA 13.0 build: no GPU needed."""
    import torch
    _fake_binary(tmp_path, 'nvidia-smi', f"cat <<'EOF'\n{NVIDIA_SMI_12_4}\nEOF")
    monkeypatch.setenv('PATH', f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(torch.version, 'cuda', '13.0')
    monkeypatch.setattr(doctor, 'PROBES', {})
    monkeypatch.setattr(doctor, 'TOOLS', {'cuda': doctor.TOOLS['cuda']})
    assert doctor.main(['--lock', str(tmp_path / 'no.lock')]) == 1
    err = capsys.readouterr().err
    assert 'the NVIDIA driver supports CUDA 12.4, but torch' in err and 'is built for CUDA 13.0' in err
    assert 'TORCH_INDEX=https://download.pytorch.org/whl/cu126 make lock && make sync' in err
