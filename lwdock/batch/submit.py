"""Bulk submit: check many learnware zips in parallel, store them with one index write per chunk.

Each zip stays all or nothing, exactly as ``Dock.submit``: the checks run in a scratch
directory (``Dock.check_new``), and the checked ones are stored together in one locked index
session (``Dock.commit_new``: blobs, manifests and unpacked copies first, the index last, the
index file written once). A crash leaves what a crash of a single submit leaves: learnwares
either in the index or orphaned files that ``lwdock doctor`` removes. One zip's failure
never stops the others.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from ..errors import ExitCode, LwdockError, NotFoundError, UsageError
from ..format.folder import as_zip, is_learnware_folder
from ..format.ids import sha256_file
from ..progress import bar
from ..records import Entry
from ..store.dock import Dock as StoreDock
from .executors import Executor, LocalExecutor

COMMIT_EVERY = 64  # checked learnwares stored per index session (bounds scratch space and lost work)


@dataclass
class SubmitOptions:
    """What ``Dock.submit`` takes, for every zip of a batch."""

    semantic: dict[str, Any] | None = None
    semantic_flags: dict[str, Any] | None = None
    run_model: bool = True
    env_manager: str = "venv"
    exist_ok: bool = False
    check_timeout: float | None = None


@dataclass
class ItemResult:
    """The outcome of one zip: stored (``entry``), or not (``error``, ``exit_code``)."""

    zip: str
    entry: Entry | None = None
    existed: bool = False
    error: str | None = None
    exit_code: int = ExitCode.OK
    report: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.entry is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"zip": self.zip, "ok": self.ok}
        if self.entry is not None:
            out.update(id=self.entry.id, status=self.entry.status, existed=self.existed)
        else:
            out.update(error=self.error, exit_code=self.exit_code)
            if self.report is not None:
                out["check"] = self.report
        return out


class BatchFailedError(LwdockError):
    """Some zips of a batch were not stored; the exit code is that of the first one (argument order)."""

    def __init__(self, results: Sequence[ItemResult]) -> None:
        failed = [r for r in results if not r.ok]
        first = failed[0]
        super().__init__(f"{len(failed)} of {len(results)} learnwares were not stored (first: {first.zip}: {first.error})")
        self.exit_code = first.exit_code


def expand_inputs(args: Iterable[str | os.PathLike[str]], stdin: TextIO | None = None) -> list[Path]:
    """Zip paths from arguments: files, folders (their ``*.zip``, sorted), ``-`` (one path a line on stdin)."""
    out: list[Path] = []
    for arg in args:
        if str(arg) == "-":
            lines = (stdin or sys.stdin).read().splitlines()
            out += [Path(ln.strip()) for ln in lines if ln.strip()]
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.zip") if p.is_file())
            if not found:
                raise NotFoundError(f"no .zip files in folder {path}")
            out += found
        else:
            out.append(path)
    if not out:
        raise UsageError("no learnware zips given")
    return out


@dataclass(frozen=True)
class SubmitInputs:
    """The zips one ``submit`` call stores; ``single`` when the user named exactly one learnware."""

    paths: list[Path]
    single: bool


@contextmanager
def submit_inputs(args: Sequence[str | os.PathLike[str]], stdin: TextIO | None = None) -> Iterator[SubmitInputs]:
    """The zips behind ``lwdock submit ARGS``: a learnware folder (it holds ``learnware.yaml``) is
    zipped for the duration of the block; other folders, ``-`` and zip paths as ``expand_inputs``."""
    with ExitStack() as stack:
        expanded: list[Path] = []
        for arg in args:
            if is_learnware_folder(arg):
                expanded.append(stack.enter_context(as_zip(arg)))
            else:
                expanded += expand_inputs([arg], stdin)
        single = len(args) == 1 and str(args[0]) != "-" and (is_learnware_folder(args[0]) or not Path(args[0]).is_dir())
        yield SubmitInputs(expanded, single)


def submit_many(dock: Any, zips: Sequence[str | os.PathLike[str]], options: SubmitOptions | None = None, *,
                executor: Executor | None = None, commit_every: int = COMMIT_EVERY) -> list[ItemResult]:
    """Check ``zips`` in parallel on ``executor`` and store those that pass; one result per zip, in order."""
    options = options or SubmitOptions()
    executor = executor or LocalExecutor()
    paths = [Path(z) for z in zips]
    results = [ItemResult(zip=str(p)) for p in paths]
    work, same_as = _first_of_each_content(paths)
    scratch_base = dock.layout.tmp
    scratch_base.mkdir(parents=True, exist_ok=True)
    pending: list[tuple[int, Path]] = []
    _DOCKS[str(dock.path)] = dock  # a local task uses this very object; a remote one opens the path
    task = partial(check_one, str(dock.path), str(scratch_base), options)
    with bar(len(work), "checking") as progress:
        try:
            for pos, outcome in executor.imap(task, [str(paths[i]) for i in work]):
                i = work[pos]
                progress.advance(1)
                if isinstance(outcome, BaseException):
                    _fail(results[i], outcome)
                elif isinstance(outcome, Failure):
                    results[i].error, results[i].exit_code, results[i].report = outcome
                elif outcome.scratch is None:
                    results[i].entry, results[i].existed = outcome.entry, True
                else:
                    results[i].entry = outcome.entry
                    pending.append((i, Path(outcome.scratch)))
                    if len(pending) >= commit_every:
                        _commit(dock, paths, results, pending)
            _commit(dock, paths, results, pending)
        finally:
            for _, scratch in pending:
                shutil.rmtree(scratch, ignore_errors=True)
    for i, first in same_as.items():
        r, f = results[i], results[first]
        r.entry, r.existed, r.error, r.exit_code, r.report = f.entry, f.entry is not None, f.error, f.exit_code, f.report
    return results


def _first_of_each_content(paths: list[Path]) -> tuple[list[int], dict[int, int]]:
    """Indexes to check (the first zip of each content), and each later copy's first (same bytes: one learnware)."""
    seen: dict[str, int] = {}
    work, same_as = [], {}
    for i, p in enumerate(paths):
        try:
            digest = sha256_file(p)
        except OSError:
            work.append(i)  # the check reports the problem
            continue
        if digest in seen:
            same_as[i] = seen[digest]
        else:
            seen[digest] = i
            work.append(i)
    return work, same_as


class Checked(NamedTuple):
    entry: Entry
    scratch: str | None  # None: the learnware was in the dock already (exist_ok)


class Failure(NamedTuple):
    error: str
    exit_code: int
    report: Any


_DOCKS: dict[str, Any] = {}  # per process: the docks tasks run against


def check_one(dock_path: str, scratch_base: str, options: SubmitOptions, zip_path: str) -> Checked | Failure:
    """The checks of one zip (``Dock.check_new``), as a task any executor can run and ship back.

    Everything in and out is plain and picklable, so the task runs in another process or on
    another machine (which sees the dock at ``dock_path``). lwdock's own errors come back as
    a Failure (their fields survive pickling); anything else is raised.
    """
    dock = _DOCKS.get(dock_path)
    if dock is None:
        dock = _DOCKS.setdefault(dock_path, StoreDock(Path(dock_path)))
    scratch = Path(scratch_base) / f"submit-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        entry = dock.check_new(zip_path, options.semantic, scratch, semantic_flags=options.semantic_flags,
                               run_model=options.run_model, env_manager=options.env_manager,
                               exist_ok=options.exist_ok, check_timeout=options.check_timeout)
    except LwdockError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        return Failure(exc.message, int(exc.exit_code), getattr(exc, "report", None))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if not dock.is_checked(scratch, entry):
        shutil.rmtree(scratch, ignore_errors=True)
        return Checked(entry, None)
    return Checked(entry, str(scratch))


def _commit(dock: Any, paths: list[Path], results: list[ItemResult], pending: list[tuple[int, Path]]) -> None:
    if not pending:
        return
    items = [(paths[i], scratch, results[i].entry) for i, scratch in pending]
    try:
        errors = dock.commit_new(items)
    except LwdockError as exc:  # the lock or the index: nothing of this chunk is in the index
        errors = [exc] * len(items)
    for (i, _), err in zip(pending, errors):
        if err is not None:
            results[i].entry = None
            _fail(results[i], err)
    for _, scratch in pending:
        shutil.rmtree(scratch, ignore_errors=True)
    pending.clear()


def _fail(result: ItemResult, exc: BaseException) -> None:
    if isinstance(exc, LwdockError):
        result.error, result.exit_code = exc.message, int(exc.exit_code)
        result.report = getattr(exc, "report", None)
    else:
        result.error, result.exit_code = f"{type(exc).__name__}: {exc}", ExitCode.ERROR


def iter_lines(results: Sequence[ItemResult]) -> Iterator[str]:
    """One human line per zip: ``<id>  <status>  <zip>`` or ``FAILED  <zip>: <reason>``."""
    for r in results:
        if r.entry is not None:
            note = " (already in the dock)" if r.existed else ""
            yield f"{r.entry.id}  {r.entry.status}  {r.zip}{note}"
        else:
            yield f"FAILED  {r.zip}: {r.error}"
