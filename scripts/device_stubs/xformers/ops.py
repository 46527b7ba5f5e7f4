"""Import-only stand-in for `xformers.ops` on the GPU check machine (see scripts/device_stubs/README.md)."""


def __getattr__(name):
    raise AttributeError(f"xformers.{name}: xformers is not installed on this machine; scripts/device_stubs only "
                         "lets audiocraft import (see scripts/device_stubs/README.md)")
