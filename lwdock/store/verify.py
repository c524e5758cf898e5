"""The verified copy: learnware code runs only from files whose content hashes match its blob.

A learnware's blob (``objects/sha256/ab/<id>.zip``) is immutable and named by
its own SHA-256. Its unpacked copy (``unpacked/<id>/``) is what a worker
mounts and imports, so before any code runs from it, every file is hashed and
compared with the stamp ``unpacked/<id>.stamp.json``, which holds the SHA-256
of each member *as read from the blob* (never from the copy on disk). A file
that differs in any byte, a missing or extra file, a symlink or a special
file means the copy is thrown away and extracted again from the blob, after
the blob itself is checked against its id. Sizes and mtimes are not trusted:
they can be restored after an edit.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from .._atomic import write_atomic
from ..errors import DockError
from ..format.archive import Limits, member_hashes
from ..format.ids import sha256_file

log = logging.getLogger("lwdock")

STAMP_VERSION = 2
MISSING = "is missing"
OUTDATED = "has no content hashes (written by an older lwdock)"


def record_stamp(blob: Path, stamp: Path, limits: Limits | None = None) -> None:
    """Write ``stamp`` with the SHA-256 of every member of ``blob``."""
    files = member_hashes(blob, limits)
    write_atomic(stamp, json.dumps({"version": STAMP_VERSION, "files": files}, separators=(",", ":")).encode())


def mismatch(root: Path, stamp: Path) -> str | None:
    """None when ``root`` holds exactly the stamped files with the stamped content, else why not."""
    if not root.is_dir() or root.is_symlink():
        return MISSING
    try:
        data = json.loads(stamp.read_text())
        want = data["files"] if data.get("version") == STAMP_VERSION else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return "has a missing or unreadable stamp"
    if not isinstance(want, dict):
        return OUTDATED
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                return f"has {rel!r}, which is not a regular file"
            if rel not in want:
                return f"has an extra file {rel!r}"
            if sha256_file(path) != want[rel]:
                return f"has a modified file {rel!r}"
            seen.add(rel)
    gone = sorted(set(want) - seen)
    return f"lacks the file {gone[0]!r}" if gone else None


def verified_copy(layout, lw_id: str, rebuild: Callable[[str], None]) -> Path:  # type: ignore[no-untyped-def]
    """``unpacked/<id>/`` after checking every file's hash; re-extracted from the blob if anything differs."""
    target = layout.unpacked_dir(lw_id)
    why = mismatch(target, layout.unpacked_stamp(lw_id))
    if why is None:
        return target
    if why not in (MISSING, OUTDATED):
        log.warning("unpacked copy of learnware %s %s; restoring it from its zip", lw_id[:12], why)
    blob = layout.blob(lw_id)
    if blob.is_file() and sha256_file(blob) != lw_id:
        raise DockError(f"blob of learnware {lw_id[:12]} does not match its hash (modified on disk)",
                        hint="run `lwdock doctor`; remove and resubmit the learnware")
    rebuild(lw_id)
    why = mismatch(target, layout.unpacked_stamp(lw_id))
    if why is not None:
        raise DockError(f"unpacked copy of learnware {lw_id[:12]} {why} right after extraction")
    return target
