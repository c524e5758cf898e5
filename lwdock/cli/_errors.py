"""One map from exceptions to one-line messages and exit codes."""

from __future__ import annotations

import errno
import re
import sys
import traceback
from pathlib import Path

from ..errors import ExitCode, LwdockError


# errors of the file system that are the user's situation, not lwdock's bug: errno -> (exit code, hint)
_OS_ERRORS = {
    errno.ENOSPC: (ExitCode.FILESYSTEM, "free some space and retry; the dock is left as it was"),
    errno.EDQUOT: (ExitCode.FILESYSTEM, "free some space and retry; the dock is left as it was"),
    errno.EROFS: (ExitCode.FILESYSTEM, "this file system is read-only: read commands work, changes need a writable dock"),
    errno.EACCES: (ExitCode.FILESYSTEM, None),
    errno.EPERM: (ExitCode.FILESYSTEM, None),
    errno.EISDIR: (ExitCode.USAGE, "give a file name, not a directory"),
    errno.ENOTDIR: (ExitCode.USAGE, "a part of that path is a file, not a directory"),
    errno.ENOENT: (ExitCode.NOT_FOUND, "check the path; a directory it needs may be missing"),
}


def report(exc: BaseException, debug: bool) -> int:
    """Print ``exc`` to stderr and return the exit code for it."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, LwdockError):
        sys.stderr.write(f"error: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        return ExitCode.INTERRUPTED
    if isinstance(exc, MemoryError):
        sys.stderr.write("error: out of memory; try --max-samples or a smaller input\n")
        return ExitCode.ERROR
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        code, hint = _OS_ERRORS[exc.errno]
        where = f": {_user_path(exc.filename)}" if exc.filename is not None else ""
        sys.stderr.write(f"error: {(exc.strerror or str(exc)).lower()}{where}\n")
        if hint:
            sys.stderr.write(f"hint: {hint}\n")
        return code
    if isinstance(exc, OSError) and exc.filename is not None:
        sys.stderr.write(f"error: {exc.strerror or exc}: {exc.filename}\n")
        return ExitCode.ERROR
    msg = " ".join(str(exc).split()) or type(exc).__name__
    sys.stderr.write(f"error: internal error ({type(exc).__name__}): {msg}\n")
    if not debug:
        sys.stderr.write("hint: rerun with --debug for the traceback, and report it as a bug\n")
    return ExitCode.ERROR


_TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.[A-Za-z0-9_]+\.tmp$")


def _user_path(filename: object) -> str:
    """The path the user named, not the hidden temp file written beside it (lwdock/_atomic.py)."""
    path = Path(str(filename))
    match = _TEMP_NAME.match(path.name)
    return str(path.with_name(match["name"])) if match else str(path)
