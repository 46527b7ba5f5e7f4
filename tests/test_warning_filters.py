"""audiocraft_mmd.warning_filters: the xformers C++-extension message is dropped on CPU, other messages kept."""
import logging

import torch

from audiocraft_mmd import warning_filters
from audiocraft_mmd.warning_filters import _XformersCppExtensionFilter


def _record(message: str):
    return logging.LogRecord('xformers', logging.WARNING, __file__, 1, message, None, None)


def test_xformers_extension_message_dropped_without_gpu():
    warning_filters.install_filters()
    filters = [f for f in logging.getLogger('xformers').filters if isinstance(f, _XformersCppExtensionFilter)]
    assert len(filters) == 1  # installed once, idempotent
    keep = filters[0].filter(_record("WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions."))
    assert keep == torch.cuda.is_available()
    assert filters[0].filter(_record("some other xformers warning"))


def test_install_is_idempotent():
    warning_filters.install_filters()
    warning_filters.install_filters()
    count = sum(isinstance(f, _XformersCppExtensionFilter) for f in logging.getLogger('xformers').filters)
    assert count == 1
