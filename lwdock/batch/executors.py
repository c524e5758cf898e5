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

from ..config import load_settings
from ..errors import UsageError

# dask is an optional dependency (``pip install 'lwdock[dask]'``), imported only by DaskExecutor

T = TypeVar("T")
EXECUTORS = ("local", "dask")


class Executor(Protocol):
    jobs: int
    remote: bool  # functions and results travel between processes (picklable, no shared memory)

    def imap(self, fn: Callable[[T], Any], items: Sequence[T]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Threads of this process (checks spend their time waiting on sandboxed workers)."""

    remote = False

    def __init__(self, jobs: int | None = None) -> None:
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs or default_jobs()

    def close(self) -> None:
        pass

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


class DaskExecutor:
    """Tasks on a Dask cluster: the one at ``address`` (``DASK_SCHEDULER_ADDRESS``), else a local one.

    A local cluster has ``jobs`` worker processes with one thread each. Each task runs in a Dask
    worker process with lwdock installed, which starts the learnware's sandboxed worker there
    (its own fork server and environments), so the sandbox rules hold on every machine. Tasks
    may run twice (Dask re-runs a task whose worker died), so they must be idempotent; bulk
    submit's checks are (each writes only its own scratch directory).
    """

    remote = True

    def __init__(self, jobs: int | None = None, address: str | None = None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("--executor dask needs dask", hint="pip install 'lwdock[dask]'") from None
        address = address or load_settings().dask_address
        self.cluster = None
        if address:
            self.client = Client(address)
        else:
            self.cluster = LocalCluster(n_workers=jobs or default_jobs(), threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=40)  # fmt: skip
            self.client = Client(self.cluster)
        self.jobs = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()) or 1

    def imap(self, fn: Callable[[T], Any], items: Sequence[T]) -> Iterator[tuple[int, Any]]:
        from dask.distributed import as_completed

        futures = {self.client.submit(_call, fn, item, pure=False): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(name: str = "local", jobs: int | None = None) -> Executor:
    """The executor called ``name`` (``--executor``)."""
    if name == "local":
        return LocalExecutor(jobs)
    if name == "dask":
        return DaskExecutor(jobs)
    raise UsageError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
