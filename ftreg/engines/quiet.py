"""Silencing, at its source, a warning no ftreg user can act on."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def peft_deprecations_silenced() -> Iterator[None]:
    """peft calls a transformers API that transformers has deprecated; nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def no_loading_bars() -> None:
    """transformers draws a bar for every weight file it loads or writes; for models this size it
    flashes by and says nothing a user can act on, so ftreg's own training bar is the only one."""
    from transformers.utils import logging

    logging.disable_progress_bar()
