"""lwdock._heap: a warm process keeps its large temporaries mapped (glibc), unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# three 16 MiB arrays held at once, ten times: glibc's adaptive thresholds give the freed heap top
# back to the kernel each time, so every round faults its pages in again
CHURN = """
import resource, sys, numpy as np
from lwdock import _heap
steady = _heap.keep_steady() if sys.argv[1] == "steady" else None
def churn():
    for _ in range(10):
        held = [np.ones(2 << 20) for _ in range(3)]
        del held
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(steady, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="glibc only")


def _churn(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True,
                         env={**clean, **env}).stdout.split()
    return out[0], int(out[1])


def test_steady_heap_stops_refaulting_freed_temporaries():
    _, faults = _churn("default")
    assert faults > 5_000  # 10 rounds x 48 MiB given back and faulted in again (~10,000 pages measured)
    steady, faults = _churn("steady")
    assert steady == "True" and faults < 100


def test_environment_that_tunes_malloc_is_left_alone():
    steady, faults = _churn("steady", MALLOC_TOP_PAD_="0")
    assert steady == "False" and faults > 5_000
