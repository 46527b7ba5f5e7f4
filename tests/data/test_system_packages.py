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
    assert system_packages.check_requirement(str(tmp_path), 'path', 'whatever', allow_install=False) == str(tmp_path)
