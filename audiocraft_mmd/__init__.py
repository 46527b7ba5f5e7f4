"""audiocraft-mmd: EnCodec-MMD / MusicGen-MMD, an independence-promoting loss for the codebooks
of neural audio codecs (Lemercier et al.), as an extension of audiocraft 1.3.0.

Importing the package is cheap: submodules (losses, metrics, solvers, models) import audiocraft
only when used.
"""
__version__ = "0.1.0"

from . import warning_filters as _warning_filters
from .compat import ffmpeg as _ffmpeg

_warning_filters.install_filters()
_ffmpeg.put_on_path()  # audiocraft's audio_write runs `ffmpeg` from PATH: the locked one where the system has none
