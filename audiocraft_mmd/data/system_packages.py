"""System tools and data files of Debian packages that the demo-set builder needs (`make data`, and the tests'
music fixtures), checked (or installed as root) before a build starts, naming what is missing and how to get it.

Nothing else needs them: `make install` and training on one's own music do not (ffmpeg comes from the lock,
`compat/ffmpeg.py`). `python -m audiocraft_mmd.data.system_packages` is what `scripts/system_deps.sh` runs:
`--missing` prints the missing Debian packages' names, `--explain` how to get them.
"""
import argparse
import logging
import os
import shutil
import subprocess
import sys
import typing as tp

logger = logging.getLogger(__name__)

# System requirements: (what, kind, Debian package). `kind` is "binary" or "path".
FLUIDSYNTH = ('fluidsynth', 'binary', 'fluidsynth')
SOUNDFONT_SF2 = ('/usr/share/sounds/sf2/FluidR3_GM.sf2', 'path', 'fluid-soundfont-gm')
SOUNDFONT_SF3 = ('/usr/share/sounds/sf3/MuseScore_General_Lite.sf3', 'path', 'musescore-general-soundfont-small')
WESNOTH_MUSIC = ('/usr/share/games/wesnoth/1.16/data/core/music', 'path', 'wesnoth-1.16-music')
FOF_MULDJORD = ('/usr/share/games/fretsonfire/data/songs/muldjord', 'path', 'fretsonfire-songs-muldjord')
FOF_SECTOID = ('/usr/share/games/fretsonfire/data/songs/sectoid', 'path', 'fretsonfire-songs-sectoid')
REQUIREMENTS = {
    'rendered': [FLUIDSYNTH, SOUNDFONT_SF2, SOUNDFONT_SF3],
    'recorded': [WESNOTH_MUSIC, FOF_MULDJORD, FOF_SECTOID],
}


# Where each package has a source other than apt. The recorded music is packaged by Debian/Ubuntu only.
ELSEWHERE = {
    'fluidsynth': 'conda install -c conda-forge fluidsynth, or your site\'s module (module avail fluidsynth)',
}
NO_APT = ('without apt (and without these), build your own set instead: docs/cluster.md; '
          'the recorded-music packages exist only in Debian/Ubuntu')


class MissingDependencyError(RuntimeError):
    """A system binary or data file from a Debian package is missing."""


def how_to_get(packages: tp.Sequence[str]) -> str:
    """The apt line for `packages`, and where each can be had without apt."""
    lines = [f"    with apt:   sudo apt-get install -y {' '.join(packages)}"]
    lines += [f'    {package}: {ELSEWHERE[package]}' for package in packages if package in ELSEWHERE]
    lines.append(f'    {NO_APT}')
    return '\n'.join(lines)


def check_requirement(target: str, kind: str, package: str,
                      allow_install: tp.Optional[bool] = None) -> str:
    """Make sure a binary (looked up on PATH) or a file/folder exists, else install or explain.

    Args:
        target: binary name (kind="binary") or absolute path (kind="path").
        kind: "binary" or "path".
        package: Debian package providing it.
        allow_install: run `apt-get install -y <package>` when missing. Defaults to True only when
            running as root, since otherwise apt-get cannot work anyway.
    Returns:
        The resolved binary path, or the path itself.
    Raises:
        MissingDependencyError: with the exact `sudo apt-get install -y <package>` line.
    """
    def _find() -> tp.Optional[str]:
        if kind == 'binary':
            return shutil.which(target)
        return target if os.path.exists(target) else None

    found = _find()
    if found is not None:
        return found
    if allow_install is None:
        allow_install = hasattr(os, 'geteuid') and os.geteuid() == 0
    if allow_install:
        logger.warning("Missing %s %s, installing Debian package %s", kind, target, package)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'install', '-y', package], env=env, check=False)
        found = _find()
        if found is not None:
            return found
    what = 'binary' if kind == 'binary' else 'file'
    raise MissingDependencyError(
        f"Missing {what} '{target}' (from Debian package {package}). Get it:\n{how_to_get([package])}")


def check_requirements(sources: tp.Sequence[str], allow_install: tp.Optional[bool] = None) -> None:
    """Check (or install as root) every system requirement of the given sources."""
    for source in sources:
        for target, kind, package in REQUIREMENTS[source]:
            check_requirement(target, kind, package, allow_install=allow_install)


def missing_packages(sources: tp.Optional[tp.Sequence[str]] = None) -> tp.List[str]:
    """Debian packages of `sources` (default: all) whose binary or file is absent here (looked up, never installed)."""
    absent = []
    for source in REQUIREMENTS if sources is None else sources:
        for target, kind, package in REQUIREMENTS[source]:
            present = shutil.which(target) if kind == 'binary' else os.path.exists(target)
            if not present and package not in absent:
                absent.append(package)
    return absent


def main(argv: tp.Optional[tp.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m audiocraft_mmd.data.system_packages',
                                     description='What the demo-set builder needs from the system.')
    parser.add_argument('--missing', action='store_true', help='print the missing Debian packages, one line')
    parser.add_argument('--explain', action='store_true', help='say what is missing and how to get it; exit 1')
    args = parser.parse_args(argv)
    absent = missing_packages()
    if args.missing:
        print(' '.join(absent))
    if args.explain and absent:
        print(f'error: missing system packages (make data, make test): {" ".join(absent)}. Get them:\n'
              f'{how_to_get(absent)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
