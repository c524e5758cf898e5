"""The dock's cross-process lock.

TinyDB has no locking of its own, and two processes writing one index file
corrupt it, so every index read and write happens under this lock. It is an
OS-level lock (flock on POSIX via ``filelock``), which the kernel releases
when a process dies: a killed submit never leaves the dock locked.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import LockTimeoutError

logger = logging.getLogger("lwdock")

_WAIT_MESSAGE_EVERY = 5.0  # seconds between "still waiting" messages
_registry: dict[str, object] = {}
_registry_guard = threading.Lock()


def _file_lock(path: Path) -> FileLock:
    given = str(path)
    with _registry_guard:
        lock = _registry.get(given)  # the path as given: resolving it costs more than a search's lock
        if lock is None:
            key = str(path.resolve())
            lock = _registry.get(key)
            if lock is None:
                lock = FileLock(key)  # reentrant within a process
                _registry[key] = lock
            _registry[given] = lock
        return lock


def _read_only(path: Path) -> bool:
    """True when the lock file cannot be created or opened for writing because the dock's file
    system (or its permissions) allows no writes at all."""
    if os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK)):
        try:  # os.access ignores a read-only mount for root: ask the file system itself
            return os.statvfs(path.parent).f_flag & os.ST_RDONLY != 0
        except OSError:
            return False
    return path.parent.is_dir()


@contextmanager
def locked(path: Path, timeout: float, what: str = "dock") -> Iterator[None]:
    """Hold the lock file ``path``; wait up to ``timeout`` seconds, saying so on stderr."""
    held = _registry.get(str(path))
    if held is not None and held.is_locked:  # this process holds it already: take it again
        held.acquire()
        try:
            yield
        finally:
            held.release()
        return
    if _read_only(path):
        # nobody can be writing a dock that nobody can write: reads need no lock, and writes fail
        # with a clear "read-only" error of their own (lwdock/cli/_errors.py)
        yield
        return
    lock = _file_lock(path)
    deadline = time.monotonic() + max(timeout, 0.0)
    announced = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            lock.acquire(timeout=max(0.0, min(_WAIT_MESSAGE_EVERY, remaining)), poll_interval=0.02)
            break
        except Timeout:
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"could not take the {what} lock {path} within {timeout:g} s",
                    hint="another lwdock process is using this dock; retry, or raise LWDOCK_LOCK_TIMEOUT",
                ) from None
            if not announced or remaining > 0:
                logger.info("waiting for the %s lock %s (pid %d) ...", what, path, os.getpid())
                announced = True
    try:
        yield
    finally:
        lock.release()
