"""Freed memory kept by the process while training, where the C library is glibc.

glibc's malloc gives a freed block of over 32 MB straight back to the kernel (each is its own
mmap), and trims the heap's top once 128 KB of it is free. A training step allocates and frees
the same large tensors every micro-batch (logits, the output layer's gradient, activations), so
each comes back as fresh pages, faulted in and zeroed one 4 KB page at a time: about 300,000
page faults and 1 to 4 s of kernel time a step of a GPT-2-124M-sized full fine-tune on two CPU
cores, a third of the step. This is what jemalloc or tcmalloc, preloaded, avoid; `mallopt` does
it from inside the process for the while.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from collections.abc import Iterator

# mallopt's parameters (malloc.h), and glibc's defaults for them.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
NEVER = 2**31 - 1  # mallopt takes an int
# A user who tuned malloc through the environment keeps their settings.
USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in USER_SETTINGS):
        return None
    return ctypes.CDLL(None)  # the C library this process runs on


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Every allocation from the heap, and freed memory left there for the next one, for the while;
    then malloc's defaults again, and what the heap kept goes back to the kernel."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, NEVER)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
