"""Where the independent pieces of a batch job run: one small interface, a local default.

An executor maps a function over items and yields ``(index, result_or_exception)`` as each
item finishes, in completion order. The function runs in lwdock's own process (local
threads) or on another machine's lwdock (a distributed engine); learnware code never runs in
it directly, only through the sandboxed worker that the function starts
(``lwdock.check.sandbox.start_worker``), so the sandbox rules hold wherever it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from ..errors import UsageError

T = TypeVar("T")
EXECUTORS = ("local",)


class Executor(Protocol):
    jobs: int

    def imap(self, fn: Callable[[T], Any], items: Sequence[T]) -> Iterator[tuple[int, Any]]: ...


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Threads of this process (checks spend their time waiting on sandboxed workers)."""

    def __init__(self, jobs: int | None = None) -> None:
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs or default_jobs()

    def imap(self, fn: Callable[[T], Any], items: Sequence[T]) -> Iterator[tuple[int, Any]]:
        """``(i, fn(items[i]))`` as each finishes; an exception is yielded as the result, not raised."""
        if self.jobs == 1:
            for i, item in enumerate(items):
                yield i, _call(fn, item)
            return
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="lwdock-batch") as pool:
            pending = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), fut.result()


def _call(fn: Callable[[T], Any], item: T) -> Any:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - one item's failure is its result, the batch goes on
        return exc


def make_executor(name: str = "local", jobs: int | None = None) -> Executor:
    """The executor called ``name`` (``--executor``)."""
    if name == "local":
        return LocalExecutor(jobs)
    raise UsageError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
