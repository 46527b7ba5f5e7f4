"""Filters for messages that are known noise in this stack, so real warnings stay visible.

Each filter matches one exact message and says why it is noise. They are installed when
`audiocraft_mmd` is imported (also in data workers and spawned evaluation processes, which
import our modules), using only the standard `logging` and `warnings` machinery.
"""
import logging
import warnings


class _XformersCppExtensionFilter(logging.Filter):
    """Drop xformers' "can't load C++/CUDA extensions" message when no GPU is visible.

    xformers logs it once per process (so once per data worker and per spawned evaluation
    process). On a CPU machine audiocraft never calls xformers kernels (its attention backend
    is `torch`), so the message says nothing actionable. With a GPU visible it is kept: there
    it may mean the xformers build does not match torch's.
    """
    def filter(self, record: logging.LogRecord) -> bool:
        if "WARNING[XFORMERS]" not in record.getMessage():
            return True
        try:
            import torch
            return torch.cuda.is_available()
        except Exception:
            return True


_WARNING_PATTERNS = (
    # torch: weight_norm moved to parametrizations; migrating renames checkpoint keys, so we keep it.
    (FutureWarning, r".*torch\.nn\.utils\.weight_norm.*is deprecated"),
    # torchaudio: expected for the small n_fft of the high MSSpec scales at 64 mels.
    (UserWarning, r"At least one mel filterbank has all zero values"),
    # hydra 1.3: audiocraft's configs use version_base 1.1 semantics on purpose.
    # hydra 1.3 (dora): our entry keeps version_base 1.1 semantics, like audiocraft's configs.
    (Warning, r'\s*version_base="1\.1" selects Hydra 1\.1 compatibility behavior'),
    (UserWarning, r".*(Future Hydra versions will no longer change working directory|"
                  r"The version_base parameter is not specified|defaults list is missing `_self_`).*"),
)


def install_filters() -> None:
    """Install the filters (idempotent)."""
    xformers_logger = logging.getLogger("xformers")
    if not any(isinstance(f, _XformersCppExtensionFilter) for f in xformers_logger.filters):
        xformers_logger.addFilter(_XformersCppExtensionFilter())
    for category, pattern in _WARNING_PATTERNS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
