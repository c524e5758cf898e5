"""One map from exceptions to one-line messages and exit codes."""

from __future__ import annotations

import sys
import traceback

from ..errors import ExitCode, LwdockError


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
    if isinstance(exc, OSError) and exc.filename is not None:
        sys.stderr.write(f"error: {exc.strerror or exc}: {exc.filename}\n")
        return ExitCode.ERROR
    msg = " ".join(str(exc).split()) or type(exc).__name__
    sys.stderr.write(f"error: internal error ({type(exc).__name__}): {msg}\n")
    if not debug:
        sys.stderr.write("hint: rerun with --debug for the traceback, and report it as a bug\n")
    return ExitCode.ERROR
