"""Typed exceptions. Each carries the exit code the CLI returns for it.

The CLI maps these to one-line messages (see ``lwdock.cli._errors``); the
library raises them with a message that names the problem and, where useful,
a ``hint`` with the next thing to try.
"""

from __future__ import annotations

import os


class ExitCode:
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    ERROR = 1  # unexpected internal error
    USAGE = 2  # bad command line (Click's convention)
    NOT_FOUND = 3  # learnware id, alias or file does not exist
    AMBIGUOUS = 4  # id prefix matches several learnwares
    LOCK_TIMEOUT = 5  # the dock lock could not be taken in time
    BAD_PACKAGE = 6  # learnware zip/yaml/semantic spec is malformed or hostile
    BAD_INPUT = 7  # user data or spec file is unreadable or inconsistent
    CHECK_FAILED = 8  # usability checks failed; nothing was stored
    NO_RESULTS = 9  # search found nothing (only with --fail-if-empty)
    DOCK = 10  # dock missing, of a newer layout, or inconsistent
    ENV = 11  # a learnware environment could not be built, or this machine cannot isolate learnware code
    RUNTIME = 12  # a learnware model failed, timed out or hit a limit
    CONFLICT = 13  # already present (same content or alias in use)
    FILESYSTEM = 14  # the file system refused: disk full, read-only, permission denied
    INTERRUPTED = 130


class LwdockError(Exception):
    """Base class for every error lwdock reports to a user."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split())


class UsageError(LwdockError):
    exit_code = ExitCode.USAGE


class SpecParamError(UsageError):
    """A specification hyperparameter is out of range (K < 1, gamma <= 0, ...): a usage error."""


class NotFoundError(LwdockError):
    exit_code = ExitCode.NOT_FOUND


class AmbiguousIdError(LwdockError):
    exit_code = ExitCode.AMBIGUOUS


class LockTimeoutError(LwdockError):
    exit_code = ExitCode.LOCK_TIMEOUT


class PackageError(LwdockError):
    """A learnware package (zip, yaml, files, semantic spec) is invalid."""

    exit_code = ExitCode.BAD_PACKAGE


class SemanticSpecError(PackageError):
    """The semantic specification does not follow the schema."""


class InputDataError(LwdockError):
    """User data, or a statistical specification file, cannot be used."""

    exit_code = ExitCode.BAD_INPUT


class SpecFileError(InputDataError):
    """A statistical specification file is corrupt, truncated or mismatched."""


class ArtifactError(InputDataError):
    """An ``.lwe`` ensemble file is unreadable, of an unknown format, or inconsistent."""


class CheckFailedError(LwdockError):
    exit_code = ExitCode.CHECK_FAILED

    def __init__(self, message: str, *, report: object = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class NoResultsError(LwdockError):
    exit_code = ExitCode.NO_RESULTS


class DockError(LwdockError):
    exit_code = ExitCode.DOCK


class LearnwareChangedError(DockError):
    """A learnware an ensemble needs is no longer the one it was built with."""


class EnvBuildError(LwdockError):
    exit_code = ExitCode.ENV


class SandboxUnavailableError(EnvBuildError):
    """Learnware code would have to run without kernel isolation (no bubblewrap or user namespaces here)."""


class ModelRuntimeError(LwdockError):
    """A learnware model crashed, timed out, hit a resource limit or broke the protocol."""

    exit_code = ExitCode.RUNTIME


class ConflictError(LwdockError):
    exit_code = ExitCode.CONFLICT


def no_file(what: str, path: object) -> LwdockError:
    """The error for a ``what`` file at ``path`` that is not a readable file: NotFoundError when
    nothing is there, UsageError (exit 2) when it is a directory."""
    if os.path.isdir(str(path)):
        return UsageError(f"{what} {str(path)!r} is a directory, not a file")
    return NotFoundError(f"{what} {str(path)!r} does not exist")
