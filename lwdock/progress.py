"""Progress reporting for long work. Bars go to stderr, and only to a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_forced_off = False


def disable(flag: bool = True) -> None:
    """Turn progress bars off for this process (the CLI does this for --json/--quiet)."""
    global _forced_off
    _forced_off = flag


def enabled() -> bool:
    if _forced_off:
        return False
    from .config import load_settings

    if load_settings().no_progress:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _NullBar:
    def advance(self, n: float = 1) -> None:
        pass


class _RichBar:
    def __init__(self, progress, task) -> None:  # type: ignore[no-untyped-def]
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)


@contextmanager
def bar(total: float | None, description: str) -> Iterator[_NullBar | _RichBar]:
    """A progress bar on stderr; a no-op when stderr is not a terminal."""
    if not enabled():
        yield _NullBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield _RichBar(progress, task)


def track(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    with bar(total, description) as b:
        for item in items:
            yield item
            b.advance(1)
