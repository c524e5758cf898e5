"""Keep a warm process's large temporaries in its heap between searches (glibc only).

A search allocates and frees a few megabytes of numpy temporaries (kernel blocks, sketches,
features). glibc serves blocks above its mmap threshold with fresh ``mmap`` pages and returns
heap tops above its trim threshold to the kernel; both thresholds adapt to what the process
frees, so whether the next search finds its memory still mapped depends on the order of earlier
frees. When it does not, every page is faulted in again: measured 880 minor page faults per warm
search at 1,000 learnwares, 1.3 ms of 9.7 (benchmarks/bench_scale.py), after a change that only
reordered the frees. Fixed thresholds make it steady: blocks up to 32 MiB (glibc's own ceiling
for the adaptive threshold) come from the heap, and up to 64 MiB of free heap top is kept.

Process-wide, set once, by the first search. Left alone where the C library is not glibc, where
``LWDOCK_STEADY_HEAP=0`` (an application that embeds lwdock and wants malloc as it was), or where
the environment sets glibc's own malloc variables (:class:`lwdock.config.Settings`).
"""

from __future__ import annotations

import ctypes
import sys
import threading

from .config import load_settings
from .errors import UsageError

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20

_state: dict[str, bool] = {}
_guard = threading.Lock()


def keep_steady() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once); True when they are set."""
    with _guard:
        if "steady" not in _state:
            _state["steady"] = _set_thresholds()
        return _state["steady"]


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        settings = load_settings()
    except UsageError:  # another variable is malformed: the command that reads it says so
        return False
    if not settings.steady_heap or settings.malloc_tuned:
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt ignores these
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
