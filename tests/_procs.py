"""Process helpers for the isolation tests."""

from __future__ import annotations

import os
import time
from pathlib import Path


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
