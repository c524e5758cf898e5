"""Progress reporting for long work: one interface, two renderers.

Library code calls :func:`bar` or :func:`track`. The command line draws the bars with rich on
stderr, beside its rich tables (:func:`use_rich`, called by the CLI at start-up); the Python
API draws them with ``tqdm.auto``, which renders a widget in a Jupyter notebook and a text bar
in a terminal. Bars appear only where someone watches: a terminal on stderr, or a notebook;
never in a pipe, a log file or a test, and never with ``LWDOCK_NO_PROGRESS`` or after
:func:`disable` (the CLI's ``--json`` and ``--quiet``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from .config import load_settings

# rich and tqdm are imported when a bar is shown: most runs never show one.

T = TypeVar("T")

_forced_off = False
_renderer = "tqdm"  # the Python API's; the CLI switches to "rich"


class Bar(Protocol):
    def advance(self, n: float = 1) -> None: ...


def disable(flag: bool = True) -> None:
    """Turn progress bars off for this process (the CLI does this for --json/--quiet)."""
    global _forced_off
    _forced_off = flag


def use_rich(flag: bool = True) -> None:
    """Draw bars with rich (the command line) instead of tqdm.auto (the Python API)."""
    global _renderer
    _renderer = "rich" if flag else "tqdm"


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _in_notebook() -> bool:
    """A Jupyter kernel is running this process (its stderr is not a TTY, yet someone watches)."""
    return "ipykernel" in sys.modules


def enabled() -> bool:
    if _forced_off or load_settings().no_progress:
        return False
    return _stderr_is_tty() or (_renderer == "tqdm" and _in_notebook())


class _NullBar:
    def advance(self, n: float = 1) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)


class _TqdmBar:
    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def advance(self, n: float = 1) -> None:
        self._bar.update(n)


@contextmanager
def bar(total: float | None, description: str) -> Iterator[Bar]:
    """A progress bar for ``total`` units of work; a no-op where nobody watches (see the module doc)."""
    if not enabled():
        yield _NullBar()
    elif _renderer == "rich":
        with _rich_bar(total, description) as b:
            yield b
    else:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=description, file=sys.stderr, leave=False, dynamic_ncols=True) as t:
            yield _TqdmBar(t)


@contextmanager
def _rich_bar(total: float | None, description: str) -> Iterator[Bar]:
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
