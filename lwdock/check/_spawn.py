"""Starting sandbox processes: the one long-lived thread that forks them, and their environment."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# root drops to a fresh uid per worker, from this range (no passwd entry needed)
UID_BASE, UID_SPAN = 1_819_738_112, 1 << 16

_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawn(argv: list[str], **kw: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **kw)``, forked by the ``lwdock-spawn`` thread.

    bwrap ``--die-with-parent`` is tied to the *thread* that forked it, so every sandbox
    (worker or fork server) is forked by one long-lived thread, not by a short-lived pool
    thread of the caller.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lwdock-spawn")
    return _spawner.submit(subprocess.Popen, argv, **kw).result()


def worker_env(home: str, path: str) -> dict[str, str]:
    """The worker's whole environment: no variable of lwdock's passes except locale and thread counts."""
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "LC_CTYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS") if k in os.environ}
    env.update(PATH=path, HOME=home, TMPDIR=home, XDG_CACHE_HOME=f"{home}/.cache",
               MPLCONFIGDIR=f"{home}/.cache/matplotlib", USER="lwdock", LOGNAME="lwdock", PYTHONHASHSEED="0")
    return env


def fresh_uid() -> int:
    return UID_BASE + random.randrange(UID_SPAN)  # noqa: S311 - not a secret, only distinct per worker
