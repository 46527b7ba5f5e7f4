"""Import-only stand-in for `av` on the GPU check machine (see scripts/device_stubs/README.md)."""


def __getattr__(name):
    raise AttributeError(f"av.{name}: av is not installed on this machine; scripts/device_stubs only "
                         "lets audiocraft import (see scripts/device_stubs/README.md)")
