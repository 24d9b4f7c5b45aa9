"""Silencing, at its source, what no ftreg user can act on, unless they asked to see everything."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

_everything = False


def show_everything() -> None:
    """`ftreg train -v`: every library's warnings, log records and loading bars, as they come.

    Called before the libraries load, so transformers reads its verbosity from the environment.
    """
    global _everything
    _everything = True
    os.environ["TRANSFORMERS_VERBOSITY"] = "info"
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    warnings.simplefilter("default")


@contextlib.contextmanager
def peft_deprecations_silenced() -> Iterator[None]:
    """peft calls a transformers API that transformers has deprecated; nothing a user can act on."""
    with warnings.catch_warnings():
        if not _everything:
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


@contextlib.contextmanager
def bitsandbytes_noise_silenced() -> Iterator[None]:
    """bitsandbytes logs a cast warning on every CPU matmul (once is information, thousands are
    noise). Load and train inside this block; bitsandbytes is imported on entering it, without
    reaching for the Hub (`_import_bitsandbytes_offline`)."""
    bnb_logger = logging.getLogger("bitsandbytes")
    level = bnb_logger.level
    if not _everything:
        bnb_logger.setLevel(logging.ERROR)
    try:
        _import_bitsandbytes_offline()
        yield
    finally:
        bnb_logger.setLevel(level)


def _import_bitsandbytes_offline() -> None:
    """On CPUs with AVX512-BF16, importing bitsandbytes fetches an optional 4-bit kernel from the
    Hub through `kernels` (which transformers >= 5.25 installs): a network call at import, and a
    warning when it fails or the Hub is offline. ftreg trains in 8 bits, so bitsandbytes is
    imported with `kernels` hidden and keeps its own CPU code, as where `kernels` is not installed."""
    if "bitsandbytes" in sys.modules:
        return
    with module_hidden("kernels"):
        import bitsandbytes  # noqa: F401


@contextlib.contextmanager
def module_hidden(name: str) -> Iterator[None]:
    """`import name` fails inside the block, as on a machine without it (an absent entry in
    `sys.modules` makes the import raise ImportError); afterwards whatever was there is put back."""
    absent = object()
    previous = sys.modules.get(name, absent)
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if previous is absent:
            del sys.modules[name]
        else:
            sys.modules[name] = previous  # type: ignore[assignment]


def no_loading_bars() -> None:
    """transformers draws a bar for every weight file it loads or writes; for models this size it
    flashes by and says nothing a user can act on, so ftreg's own training bar is the only one."""
    if _everything:
        return
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


class _PaddingFalseAlarm(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("We strongly recommend passing in an `attention_mask`")


def padding_false_alarm_silenced() -> None:
    """ftreg passes an attention mask with every padded batch; transformers drops an all-ones mask
    while decoding and then mistakes a finished row's end-of-text for padding. Nothing is wrong."""
    if _everything:
        return
    found = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(each, _PaddingFalseAlarm) for each in found.filters):
        found.addFilter(_PaddingFalseAlarm())
