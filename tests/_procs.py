"""Process helpers for the isolation tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lwdock.check import forkserver


def processes_with(marker: str, wait: float = 5.0) -> list[int]:
    """PIDs whose command line contains ``marker`` (after giving killed ones ``wait`` s to go)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid():
                try:
                    if marker.encode() in (d / "cmdline").read_bytes():
                        found.append(int(d.name))
                except OSError:
                    continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _parents() -> dict[int, int]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                out[int(d.name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``."""
    parents, found, todo = _parents(), [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        todo += kids
    return found


def leftover_workers(wait: float = 3.0) -> list[int]:
    """Processes of this test process that are not an idle fork server.

    A fork server (``lwdock.check.forkserver``) lives as long as the process that started it:
    its outer bwrap, bwrap's PID 1 and the server's interpreter. Anything more below it is a
    worker that was not closed.
    """
    deadline = time.monotonic() + wait
    while True:
        servers = set(forkserver.server_pids())
        left = []
        for kid in [c for c, pp in _parents().items() if pp == os.getpid()]:
            below = descendants(kid)
            if kid in servers and len(below) <= 2:
                continue
            left += [kid, *below]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
