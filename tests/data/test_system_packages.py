"""audiocraft_mmd.data.system_packages: a missing tool or file names its Debian package."""
import pytest

from audiocraft_mmd.data import system_packages


def test_missing_tool_names_debian_package(tmp_path):
    missing = str(tmp_path / 'nope' / 'FluidR3_GM.sf2')
    with pytest.raises(system_packages.MissingDependencyError) as err:
        system_packages.check_requirement(missing, 'path', 'fluid-soundfont-gm', allow_install=False)
    assert 'sudo apt-get install -y fluid-soundfont-gm' in str(err.value) and missing in str(err.value)
    with pytest.raises(system_packages.MissingDependencyError) as err:
        system_packages.check_requirement('fluidsynth-does-not-exist', 'binary', 'fluidsynth', allow_install=False)
    assert 'sudo apt-get install -y fluidsynth' in str(err.value)
    assert 'conda install -c conda-forge fluidsynth' in str(err.value)
    assert system_packages.check_requirement(str(tmp_path), 'path', 'whatever', allow_install=False) == str(tmp_path)


def test_missing_packages_are_named_with_every_way_to_get_them(tmp_path, monkeypatch, capsys):
    present = tmp_path / 'present.sf2'
    present.touch()
    monkeypatch.setattr(system_packages, 'REQUIREMENTS', {
        'rendered': [('fluidsynth-does-not-exist', 'binary', 'fluidsynth'),
                     (str(present), 'path', 'fluid-soundfont-gm')],
        'recorded': [(str(tmp_path / 'absent'), 'path', 'wesnoth-1.16-music'),
                     (str(tmp_path / 'absent2'), 'path', 'wesnoth-1.16-music')]})
    assert system_packages.missing_packages() == ['fluidsynth', 'wesnoth-1.16-music']
    assert system_packages.main(['--missing', '--explain']) == 1
    out, err = capsys.readouterr()
    assert out.strip() == 'fluidsynth wesnoth-1.16-music'
    assert 'sudo apt-get install -y fluidsynth wesnoth-1.16-music' in err
    assert 'conda install -c conda-forge fluidsynth' in err and 'docs/cluster.md' in err
    monkeypatch.setattr(system_packages, 'REQUIREMENTS', {'rendered': [(str(present), 'path', 'fluid-soundfont-gm')]})
    assert system_packages.main(['--explain']) == 0
