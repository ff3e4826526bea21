"""The process's memory: large freed buffers go back to the system.

By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB). After a
few multi-MB buffers (a Celery result's base64 clip in the bot, audio and model weights in a worker)
every later one comes from the heap, whose freed pages stay in the process: RSS rose in steps and
kept each high-water mark (`bench/soak.py`; docs/soak.md). A fixed threshold, which also turns the
raising off, keeps blocks over 1 MiB in their own mappings, returned when freed.

Set by hand through ``mallopt``: no library exposes glibc's malloc parameters, and the
``MALLOC_MMAP_THRESHOLD_`` variable would have to be set before the interpreter starts (and would
reach FluidSynth and ffmpeg too).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1024 * 1024


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold for this process (see the module docstring). Returns whether the
    setting took: False off glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
