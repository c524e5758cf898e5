"""lwdock._heap: a warm process keeps its large temporaries mapped (glibc), unless told otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lwdock.search import api

# glibc's own account of its heap (mallinfo2), read by each child below
MALLINFO = """
import ctypes
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
"""
# Three 16 MiB arrays held at once, freed, ten times. glibc's own state first (mallinfo2: bytes in
# blocks of their own mmap while held, free bytes its heap keeps after), then the consequence that
# matters, page faults of the next ten rounds (a count that transparent huge pages shrink, so
# only compared between the two runs).
CHURN = MALLINFO + """
import resource, sys
import numpy as np
from lwdock import _heap
steady = _heap.keep_steady() if sys.argv[1] == "steady" else None
held = [np.ones(2 << 20) for _ in range(3)]
mapped = libc.mallinfo2().hblkhd
del held
kept = libc.mallinfo2().fordblks
def churn():
    for _ in range(10):
        held = [np.ones(2 << 20) for _ in range(3)]
        del held
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(steady, mapped >> 20, kept >> 20, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="glibc only")


def _churn(mode: str, **env: str) -> tuple[str, int, int, int]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MALLOC_", "LWDOCK_")) and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True,
                         env={**clean, **env}).stdout.split()
    return out[0], int(out[1]), int(out[2]), int(out[3])


def test_steady_heap_keeps_freed_temporaries_mapped():
    _, mapped, kept, faults = _churn("default")
    assert mapped >= 48 and kept < 48  # glibc's start: each array its own mmap, given back when freed
    steady, mapped, kept, steady_faults = _churn("steady")
    assert steady == "True" and mapped < 16 and kept >= 48  # from the heap, and kept there when freed
    assert faults > 100 and steady_faults * 10 < faults


@pytest.mark.parametrize("env", [{"MALLOC_TOP_PAD_": "0"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
                                 {"LWDOCK_STEADY_HEAP": "0"}])
def test_malloc_left_alone_when_the_environment_says_so(env):
    steady, mapped, _, _ = _churn("steady", **env)
    assert steady == "False" and mapped >= 48


def test_unrelated_tunables_do_not_turn_it_off():
    steady, mapped, _, _ = _churn("steady", GLIBC_TUNABLES="glibc.pthread.rseq=0")
    assert steady == "True" and mapped < 16


# the installed console script, run in this child's own process (runpy), then glibc's state
CLI_THEN_PROBE = MALLINFO + """
import runpy, sys
import numpy as np
sys.argv = [sys.argv[1], "--dock", sys.argv[2], "search", "--name", "anything", "--json"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
held = [np.ones(2 << 20) for _ in range(3)]
print(libc.mallinfo2().hblkhd >> 20, file=sys.stderr)
"""


@pytest.mark.parametrize(("value", "steady"), [(None, True), ("0", False)])
def test_lwdock_search_keeps_the_heap_steady_unless_told_not_to(dock, value, steady):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "LWDOCK_")) and k != "GLIBC_TUNABLES"}
    env = {**clean, "LWDOCK_NO_PROGRESS": "1", **({"LWDOCK_STEADY_HEAP": value} if value else {})}
    done = subprocess.run([sys.executable, "-c", CLI_THEN_PROBE, str(Path(sys.executable).parent / "lwdock"),
                           str(dock.path)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout)["singles"] == []
    mapped = int(done.stderr.strip().splitlines()[-1])
    assert (mapped < 16) if steady else (mapped >= 48)


def test_every_search_keeps_the_heap_steady(dock, monkeypatch):
    calls = []
    monkeypatch.setattr(api, "keep_steady", lambda: bool(calls.append(1)))
    api.search(dock, name="anything")
    assert calls == [1]
