"""audiocraft_mmd.cuda_build: the driver's CUDA version read and matched with torch's build, on faked readers."""
import pytest

from audiocraft_mmd import cuda_build


def test_nvidia_smi_header_is_parsed():
    assert cuda_build.parse_nvidia_smi('| NVIDIA-SMI 580.65  Driver Version: 580.65  CUDA Version: 13.0 |') == (13, 0)
    assert cuda_build.parse_nvidia_smi('NVIDIA-SMI has failed because it could not communicate') is None


def test_the_first_reader_that_finds_a_driver_wins():
    assert cuda_build.driver_version([lambda: None, lambda: (12, 8), lambda: (13, 0)]) == (12, 8)
    assert cuda_build.driver_version([lambda: None]) is None


@pytest.mark.parametrize('driver, index', [((13, 2), 'cu130'), ((13, 0), 'cu130'), ((12, 9), 'cu128'),
                                           ((12, 6), 'cu126'), ((12, 4), 'cu126'), ((11, 8), None)])
def test_the_build_named_runs_on_the_driver(driver, index):
    assert cuda_build.build_for(driver) == index


def test_verdicts():
    assert cuda_build.check(None, None, '2.11.0+cpu')[0]
    assert cuda_build.check(None, '13.0', '2.11.0')[0]  # no driver: nothing to compare (CPU machine)
    assert cuda_build.check((13, 0), '13.0', '2.11.0')[0]
    ok, line = cuda_build.check((12, 6), '12.8', '2.11.0+cu128')  # same major: runs, with the caveat
    assert ok and 'minor-version compatibility' in line
    ok, line = cuda_build.check((12, 8), '13.0', '2.11.0')
    assert not ok and 'TORCH_INDEX=https://download.pytorch.org/whl/cu128 make lock && make sync' in line
    ok, line = cuda_build.check((11, 8), '13.0', '2.11.0')
    assert not ok and 'no torch 2.11 build runs on it (the oldest is CUDA 12.6)' in line
