"""Models: codec loaders and MusicGenMMD. Attributes are imported lazily (they pull in audiocraft)."""
import importlib
import typing as tp

_LAZY = {
    'MusicGenMMD': '.musicgen_mmd',
    'build_debug_model': '.musicgen_mmd',
    'load_compression_model': '.loaders',
    'get_compression_model': '.builders',
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> tp.Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
