"""Scratch directories named after their owner, so leftovers of a killed process can be found.

Every scratch directory lwdock makes is ``<base>/<what>-<pid>-<uuid>``: in a
dock, ``base`` is ``<dock>/tmp`` and ``lwdock doctor`` removes entries whose
process is gone; without a dock (``lwdock check ZIP`` on its own) it is the
per-user cache directory, cleaned the same way at the start of the next check.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path


def new_dir(base: str | os.PathLike[str], what: str) -> Path:
    """A fresh private directory ``<base>/<what>-<pid>-<uuid>`` (``base`` is created if needed).

    On a dock that cannot be written (a read-only mount: reads such as ``search`` still run
    models to verify candidates) the directory is made in the system's temporary directory.
    """
    name = f"{what}-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        root = Path(base)
        root.mkdir(parents=True, exist_ok=True)
        path = root / name
        path.mkdir(mode=0o700)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        path = Path(tempfile.gettempdir()) / f"lwdock-scratch-{os.getuid()}" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.mkdir(mode=0o700)
    return path


def owner_alive(name: str) -> bool:
    """Is the process named in a scratch entry ``<what>-<pid>-<uuid>`` still running?"""
    parts = name.split("-")
    if len(parts) < 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(base: str | os.PathLike[str]) -> list[str]:
    """Remove entries of ``base`` whose owner process is gone; returns their names."""
    root = Path(base)
    removed = []
    for entry in root.iterdir() if root.is_dir() else ():
        if owner_alive(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
