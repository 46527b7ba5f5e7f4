"""An `ffmpeg` for audiocraft's `audio_write` on machines that have none (a cluster node without apt).

What it replaces, and why: audiocraft 1.3.0's `audio_write` (`audiocraft/data/audio.py`) always pipes to a
binary named `ffmpeg` looked up on PATH, for wav too, and fails with FileNotFoundError without one. The lock
holds `imageio-ffmpeg`, whose wheel ships a static ffmpeg under another name
(`imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2`). `make install` runs `link(venv_bin())`, which makes
`.venv/bin/ffmpeg` a symlink to it: an activated `.venv` then has it on PATH like any other tool of the venv.
Programs started without activation (`.venv/bin/dora run ...`, a SLURM job) import this package, whose import
calls `put_on_path()`: when PATH has no `ffmpeg`, it appends the venv's `bin/` to PATH (appended, so that a
site's ffmpeg, from the system or `module load ffmpeg`, wins). audiocraft itself is not touched, and its child
processes inherit the PATH.
"""
import os
from pathlib import Path
import shutil
import sys
import typing as tp

NAME = 'ffmpeg'
FIX = ('make install (links the locked imageio-ffmpeg binary into .venv/bin), or an ffmpeg on PATH: '
       'apt-get install ffmpeg, conda install -c conda-forge ffmpeg, or module load ffmpeg')


def venv_bin() -> Path:
    """The folder of the running interpreter, unresolved: `.venv/bin` when run from the project's venv."""
    return Path(sys.executable).parent


def put_on_path() -> tp.Optional[str]:
    """The `ffmpeg` that `audio_write` will run: PATH's, else the venv's link (its folder appended to PATH)."""
    found = shutil.which(NAME)
    if found is not None:
        return found
    linked = venv_bin() / NAME
    if not os.access(linked, os.X_OK):
        return None
    os.environ['PATH'] = os.pathsep.join(filter(None, [os.environ.get('PATH', ''), str(venv_bin())]))
    return str(linked)


def wheel_binary() -> Path:
    """imageio-ffmpeg's static binary (in its wheel), without running it."""
    import imageio_ffmpeg.binaries
    folder = Path(imageio_ffmpeg.binaries.__file__).parent
    found = sorted(folder.glob('ffmpeg-*'))
    if not found:
        raise FileNotFoundError(f'imageio-ffmpeg ships no binary for this platform in {folder}')
    return found[-1]


def link(target_dir: Path) -> Path:
    """Make `target_dir/ffmpeg` a symlink to the wheel's binary (replacing an older link); returns the link."""
    path = target_dir / NAME
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(wheel_binary())
    return path
