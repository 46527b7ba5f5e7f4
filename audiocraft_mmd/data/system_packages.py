"""System tools and data files of Debian packages that the builder needs, checked (or installed as root)
before a build starts, with the exact `apt-get install` line when missing.
"""
import logging
import os
import shutil
import subprocess
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


class MissingDependencyError(RuntimeError):
    """A system binary or data file from a Debian package is missing."""


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
        f"Missing {what} '{target}' (from Debian package {package}). Install it with:\n"
        f"    sudo apt-get install -y {package}")


def check_requirements(sources: tp.Sequence[str], allow_install: tp.Optional[bool] = None) -> None:
    """Check (or install as root) every system requirement of the given sources."""
    for source in sources:
        for target, kind, package in REQUIREMENTS[source]:
            check_requirement(target, kind, package, allow_install=allow_install)
