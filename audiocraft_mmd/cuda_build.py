"""Does torch's CUDA build run on this node's NVIDIA driver? Read by the doctor (`make doctor`).

The lock pins PyPI's torch 2.11.0, the CUDA 13.0 build. A driver predates CUDA 13 on many cluster nodes; there
that build imports fine, then finds no GPU or fails at its first kernel. A driver runs builds of its own CUDA
major version at any minor version (NVIDIA's minor-version compatibility), except kernels compiled just in time
from PTX, which need a driver at least as new as the build. PyTorch publishes torch 2.11 for CUDA 12.6, 12.8
and 13.0 (its RELEASE.md compatibility matrix), each on its own wheel index; docs/cuda.md locks one of them.
"""
import ctypes
import re
import shutil
import subprocess
import typing as tp

Version = tp.Tuple[int, int]
# torch 2.11's CUDA builds: (CUDA version) -> wheel index name.
BUILDS: tp.Dict[Version, str] = {(12, 6): 'cu126', (12, 8): 'cu128', (13, 0): 'cu130'}
INDEX_URL = 'https://download.pytorch.org/whl/{}'
_SMI_CUDA = re.compile(r'CUDA Version\s*:\s*(\d+)\.(\d+)')


def parse_nvidia_smi(text: str) -> tp.Optional[Version]:
    """The driver's CUDA version from `nvidia-smi`'s header (`... CUDA Version: 12.4 |`)."""
    match = _SMI_CUDA.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def from_nvidia_smi() -> tp.Optional[Version]:
    binary = shutil.which('nvidia-smi')
    if binary is None:
        return None
    try:
        proc = subprocess.run([binary], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi(proc.stdout)


def from_libcuda() -> tp.Optional[Version]:
    """`cuDriverGetVersion` of the driver library (1000 * major + 10 * minor), where nvidia-smi is absent."""
    try:
        lib = ctypes.CDLL('libcuda.so.1')
    except OSError:
        return None
    version = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0 or version.value <= 0:
        return None
    return version.value // 1000, (version.value % 1000) // 10


def driver_version(readers: tp.Sequence[tp.Callable[[], tp.Optional[Version]]] = (from_nvidia_smi, from_libcuda)
                   ) -> tp.Optional[Version]:
    """The highest CUDA version the installed driver supports; None without an NVIDIA driver."""
    for read in readers:
        found = read()
        if found is not None:
            return found
    return None


def _text(version: Version) -> str:
    return f'{version[0]}.{version[1]}'


def build_for(driver: Version) -> tp.Optional[str]:
    """The wheel index of the newest build the driver runs: one no newer than it, else the oldest of its major
    version (minor-version compatibility); None when no build has the driver's major version or an older one."""
    older = [cuda for cuda in BUILDS if cuda <= driver]
    if older:
        return BUILDS[max(older)]
    same_major = [cuda for cuda in BUILDS if cuda[0] == driver[0]]
    return BUILDS[min(same_major)] if same_major else None


def _fix(driver: Version, build: str) -> str:
    name = build_for(driver)
    if name is None:
        return (f'no torch 2.11 build runs on it (the oldest is CUDA {_text(min(BUILDS))}): '
                f'ask for a newer driver')
    return (f'lock the {name} build: TORCH_INDEX={INDEX_URL.format(name)} make lock && make sync '
            f'(docs/cuda.md), or ask for a driver that supports CUDA {build}')


def check(driver: tp.Optional[Version], build: tp.Optional[str], torch_version: str) -> tp.Tuple[bool, str]:
    """(ok, line) for a driver's CUDA version (None: no driver) and torch's (`torch.version.cuda`, None: CPU)."""
    if build is None:
        return True, f'CUDA: torch {torch_version} is a CPU build'
    if driver is None:
        return True, f'CUDA: torch {torch_version} built for CUDA {build}; no NVIDIA driver here (no GPU)'
    built = tp.cast(Version, tuple(int(part) for part in build.split('.')[:2]))
    if driver >= built:
        return True, f'CUDA: the driver supports CUDA {_text(driver)}, torch {torch_version} is built for {build}'
    if driver[0] == built[0]:
        return True, (f'CUDA: the driver supports CUDA {_text(driver)}, older than torch {torch_version}\'s {build}: '
                      f'it runs (minor-version compatibility) except kernels compiled from PTX; to be safe, '
                      + _fix(driver, build))
    return False, (f'the NVIDIA driver supports CUDA {_text(driver)}, but torch {torch_version} is built for CUDA '
                   f'{build}: it will find no GPU or fail at its first kernel. Fix: ' + _fix(driver, build))


def probe() -> tp.Tuple[bool, str]:
    """The doctor's check on this machine."""
    import torch
    return check(driver_version(), torch.version.cuda, torch.__version__)
