"""Environment check: `python -m audiocraft_mmd.doctor` (`make doctor`, and the first step of `make test`).

Three questions, answered before any test collects:
1. Do the compiled extensions we use load? torch, torchaudio's C library, xformers' ops, av (FFmpeg) and
   soundfile (libsndfile). A torchaudio built for another torch fails here with an undefined symbol.
2. Is the installed set the lock (`requirements.lock`)? Same names, same versions; with `--strict` (and always
   under CI) a package that the lock does not hold is an error too.
3. Do the tools outside Python work here? The `ffmpeg` that audiocraft's `audio_write` pipes to runs, and the
   NVIDIA driver (when there is one) supports the CUDA version torch is built for (`cuda_build.py`).

When an extension does not load, the report names the pair that must match (torchaudio next to torch), their
installed and locked versions, and the fix, in one line, instead of a test collection that fails 24 times.
This module imports nothing heavy at import time: the checks are what imports torch.
"""
import argparse
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import typing as tp
from dataclasses import dataclass
from pathlib import Path

LOCK_PATH = Path(__file__).resolve().parent.parent / 'requirements.lock'
PROJECT = 'audiocraft-mmd'  # installed editable from the checkout, not from the lock
FIX = 'make sync (re-syncs .venv to requirements.lock)'

# Extension -> the library its binary is built against: a version drift of either breaks the pair.
ABI_PARTNER = {'torchaudio': 'torch', 'xformers': 'torch'}


def _probe_torch() -> str:
    import torch
    return f'torch {torch.__version__}: ' + ('ok' if float((torch.ones(2) * 2).sum()) == 4.0 else 'wrong sum')


def _probe_torchaudio() -> str:
    import torch
    import torchaudio
    import torchaudio.functional as F
    # lfilter runs torchaudio's compiled kernel (libtorchaudio), not only its Python layer.
    out = F.lfilter(torch.ones(1, 8), torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]))
    return f'torchaudio {torchaudio.__version__}: lfilter {tuple(out.shape)}'


def _probe_xformers() -> str:
    import xformers
    import xformers.ops  # noqa: F401  (audiocraft's transformer imports it)
    return f'xformers {xformers.__version__}: ops import'


def _probe_av() -> str:
    import av
    av.codec.Codec('flac', 'w')  # FFmpeg's libraries, which audiocraft's audio reading uses
    return f'av {av.__version__}: flac encoder'


def _probe_soundfile() -> str:
    import soundfile
    return f'soundfile {soundfile.__version__}: libsndfile {soundfile.__libsndfile_version__}'


# Distribution name -> probe. The names are the lock's (canonical) distribution names.
PROBES: tp.Dict[str, tp.Callable[[], str]] = {
    'torch': _probe_torch, 'torchaudio': _probe_torchaudio, 'xformers': _probe_xformers,
    'av': _probe_av, 'soundfile': _probe_soundfile,
}


class ToolProblem(RuntimeError):
    """A tool outside Python is missing or does not fit; the message names the fix."""


def _check_ffmpeg() -> str:
    from .compat import ffmpeg
    binary = ffmpeg.put_on_path()
    if binary is None:
        raise ToolProblem(f"no ffmpeg on PATH (audiocraft's audio_write pipes to it). Fix: {ffmpeg.FIX}")
    proc = subprocess.run([binary, '-version'], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ToolProblem(f'{binary} -version exits {proc.returncode}: {proc.stderr.strip()[-200:]}. '
                          f'Fix: {ffmpeg.FIX}')
    return f"{' '.join(proc.stdout.split()[:3])} ({binary})"  # `ffmpeg version 7.0.2-static`


def _check_cuda_driver() -> str:
    from . import cuda_build
    ok, line = cuda_build.probe()
    if not ok:
        raise ToolProblem(line)
    return line


TOOLS: tp.Dict[str, tp.Callable[[], str]] = {'ffmpeg': _check_ffmpeg, 'cuda': _check_cuda_driver}


def check_tools(tools: tp.Dict[str, tp.Callable[[], str]]) -> tp.Tuple[tp.List[str], tp.List[str]]:
    """(problem lines, ok lines) of the tool checks."""
    failed, ok = [], []
    for run in tools.values():
        try:
            ok.append(run())
        except (ToolProblem, OSError, subprocess.SubprocessError) as exc:
            failed.append(f'doctor: {exc}')
    return failed, ok


def canonical(name: str) -> str:
    """PEP 503 name: `Hydra_Core` and `hydra-core` are one distribution."""
    return re.sub(r'[-_.]+', '-', name).lower()


_PIN = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*(.*?))?\s*\\?\s*$')


def read_lock(text: str, environment: tp.Optional[dict] = None) -> tp.Dict[str, str]:
    """Pins of a uv/pip-compile lock that apply here: {canonical name: version}.

    A lock line is `name==version [; marker] \\` followed by hash lines; a name may appear once per marker
    (numpy for Python 3.11 and for 3.12). `environment` overrides the marker environment (tests).
    """
    from packaging.markers import Marker
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate(environment):
            continue
        pins[canonical(name)] = version
    return pins


def installed_versions() -> tp.Dict[str, str]:
    return {canonical(d.metadata['Name']): d.version for d in importlib.metadata.distributions()
            if d.metadata['Name']}


def same_release(installed: str, locked: str) -> bool:
    """Equal, or the same release with a local build label: the GPU machines' torch `2.11.0+cu130` is PyPI's
    `2.11.0`, whose Linux wheel is itself built against CUDA 13.0 (the lock's nvidia-*-cu13 and cuda-toolkit)."""
    return installed == locked or installed.split('+', 1)[0] == locked


@dataclass(frozen=True)
class Report:
    lines: tp.List[str]  # one line per problem, each naming the culprit and the fix
    ok_lines: tp.List[str]  # what loaded

    @property
    def ok(self) -> bool:
        return not self.lines


def _version(versions: tp.Dict[str, str], name: str) -> str:
    return versions.get(name, 'not installed')


def compare(lock: tp.Dict[str, str], versions: tp.Dict[str, str], strict: bool,
            installed_only: bool = False) -> tp.List[str]:
    """Lines for every installed version that is not the lock's (and, unless `installed_only`, every locked
    package that is missing; with `strict`, every installed one that the lock does not hold)."""
    lines = []
    for name, locked in sorted(lock.items()):
        have = versions.get(name)
        if have is None:
            if not installed_only:
                lines.append(f'doctor: {name} is not installed; the lock has {locked}. Fix: {FIX}')
        elif not same_release(have, locked):
            partner = ABI_PARTNER.get(name)
            beside = f' next to {partner} {_version(versions, partner)}' if partner else ''
            lines.append(f'doctor: {name} {have} is installed{beside}; the lock has {name} {locked}. Fix: {FIX}')
    extra = sorted(set(versions) - set(lock) - {PROJECT})
    if extra and strict and not installed_only:
        lines.append(f'doctor: {len(extra)} installed package(s) the lock does not hold: {", ".join(extra)}. '
                     f'Fix: {FIX}, or add them to setup.cfg and run make lock')
    return lines


def _root_cause(exc: BaseException) -> str:
    """The innermost error of a chain, on one line: torchaudio wraps the loader's `undefined symbol` message
    in its own 'Could not load this library'."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip()
    return f'{type(exc).__name__}: {text.splitlines()[0]}' if text else type(exc).__name__


def probe(probes: tp.Dict[str, tp.Callable[[], str]], lock: tp.Dict[str, str],
          versions: tp.Dict[str, str]) -> tp.Tuple[tp.List[str], tp.List[str]]:
    """Run each probe; a failure becomes one line naming the extension, its ABI partner and both versions."""
    failed, loaded = [], []
    for name, run in probes.items():
        try:
            loaded.append(run())
        except Exception as exc:  # an ABI break is an OSError or ImportError; report whatever it is
            error = _root_cause(exc)
            partner = ABI_PARTNER.get(name)
            pair = f'{name} {_version(versions, name)}'
            locked = f'{name} {lock.get(name, "?")}'
            if partner:
                pair += f' next to {partner} {_version(versions, partner)}'
                locked += f' with {partner} {lock.get(partner, "?")}'
            if all(same_release(versions.get(n, ''), lock.get(n, '-')) for n in (name, partner) if n):
                fix = ('the lock itself holds a broken pair: pin a matching one in requirements/stack.txt, '
                       'then make lock && make install')
            else:
                fix = FIX
            failed.append(f'doctor: {pair} does not load ({error}); '
                          f'the lock pairs {locked}. Fix: {fix}')
    return failed, loaded


def check(lock_text: tp.Optional[str], versions: tp.Dict[str, str], strict: bool, installed_only: bool = False,
          probes: tp.Optional[tp.Dict[str, tp.Callable[[], str]]] = None,
          tools: tp.Optional[tp.Dict[str, tp.Callable[[], str]]] = None) -> Report:
    """`probes` default to PROBES, `tools` to none (tests pass the ones they fake; `main` passes TOOLS)."""
    lock = read_lock(lock_text) if lock_text is not None else {}
    failed, loaded = probe(PROBES if probes is None else probes, lock, versions)
    tools_failed, tools_ok = check_tools(tools or {})
    drift = compare(lock, versions, strict, installed_only) if lock_text is not None else []
    # An extension that fails names its pair already: drop the plain version line of the same package.
    named = {line.split()[1] for line in failed}
    drift = [line for line in drift if line.split()[1] not in named]
    return Report(lines=failed + drift + tools_failed, ok_lines=loaded + tools_ok)


def main(argv: tp.Optional[tp.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.doctor', description=__doc__.split('\n\n')[0])
    parser.add_argument('--lock', type=Path, default=LOCK_PATH, help='lock file (default: the checkout\'s)')
    parser.add_argument('--strict', action='store_true', default=os.environ.get('CI') == 'true',
                        help='packages the lock does not hold are errors too (default under CI=true)')
    parser.add_argument('--installed-only', action='store_true',
                        help='compare only installed packages (a preinstalled image, such as the GPU machines)')
    parser.add_argument('--without', nargs='*', default=[], metavar='MODULE',
                        help='extensions this machine replaces by import-only stand-ins (scripts/device_stubs): '
                             'not probed, reported as such')
    args = parser.parse_args(argv)
    lock_text = args.lock.read_text() if args.lock.exists() else None
    probes = {name: run for name, run in PROBES.items() if name not in args.without}
    report = check(lock_text, installed_versions(), args.strict, args.installed_only, probes=probes, tools=TOOLS)
    skipped = sorted(set(args.without) & set(PROBES))
    if skipped:
        print(f'doctor: not probed (stand-ins on this machine): {", ".join(skipped)}')
    for line in report.lines:
        print(line, file=sys.stderr)
    if lock_text is None:
        print(f'doctor: no lock at {args.lock} (an installed package, not a checkout): extensions only')
    if report.ok:
        held = len(read_lock(lock_text)) if lock_text is not None else 0
        print(f'doctor: ok: {"; ".join(report.ok_lines)}'
              + (f'; the {held} locked distributions are installed as locked' if held else ''))
        return 0
    return 1


if __name__ == '__main__':
    sys.exit(main())
