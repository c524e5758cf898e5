"""How search sees a dock: a small Protocol instead of reaching into the Dock class.

:class:`lwdock.store.dock.Dock` satisfies :class:`DockView` as it is; so can a stand-in (tests,
benchmarks) that keeps a search store somewhere. Search reads the index and the store only
under ``lock()``. Entries come as :class:`lwdock.records.Entry` through :func:`as_entry`, the
one place that turns the Dock's index dicts into records.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import LwdockError
from ..records import Entry
from ..spec import registry


class DockLayout(Protocol):
    @property
    def search(self) -> Path:
        """The search store's directory."""

    @property
    def envs(self) -> Path:
        """The learnware environments (verification only looks them up, never builds one)."""

    def unpacked_dir(self, lw_id: str) -> Path:
        """Where a learnware's files are unpacked (its spec files among them)."""


class DockView(Protocol):
    path: Path
    layout: DockLayout

    @property
    def settings(self) -> dict[str, Any]: ...

    def lock(self) -> AbstractContextManager[None]: ...

    def generation(self) -> int: ...

    def entries(self, status: str | list[str] | None = None) -> list[Any]: ...

    def spec_path(self, ref: str, kind: str = "table") -> Path: ...

    def package(self, ref: str) -> Any:
        """A learnware's unpacked package (verification runs its model)."""


def as_entry(entry: Entry | Mapping[str, Any]) -> Entry:
    """The Dock's entry as a record (``Dock.entries()`` still returns dicts; this goes when it returns Entry)."""
    return entry if isinstance(entry, Entry) else Entry.from_dict(entry)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Index-sized bursts of small objects (records, id sets) make no reference cycles, but they
    re-trigger the cyclic GC over a heap that holds the whole index (measured: search() 2.3x
    slower at 10,000 entries); the index read pauses it for the same reason. Cycles made in the
    meantime are collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def as_entries(entries: Iterable[Entry | Mapping[str, Any]]) -> list[Entry]:
    with gc_paused():
        return [as_entry(e) for e in entries]


def searchable_kinds(entry: Entry) -> list[str]:
    """The spec kinds by which an entry takes part in statistical search (none when it is invalid)."""
    if entry.status == "invalid":
        return []
    kinds = [s.kind for s in entry.specs if s.kind in registry.KINDS]
    return list(dict.fromkeys(kinds))


def spec_file(dock: DockView, entry: Entry, kind: str) -> Path:
    """The entry's spec file of ``kind``. The Dock calls the store's listener before its index is
    written, so the unpacked files are read directly; ``spec_path`` (which resolves through the
    index and restores a modified unpacked copy) is the fallback."""
    for s in entry.specs:
        if s.kind == kind and s.file_name:
            path = Path(dock.layout.unpacked_dir(entry.id)) / s.file_name
            if path.is_file():
                return path
    return Path(dock.spec_path(entry.id, kind=kind))


def setting(dock: DockView, key: str, default: Any) -> Any:
    """One dock setting; the store reports a missing or corrupt settings file elsewhere."""
    try:
        return dock.settings.get(key, default)
    except LwdockError:
        return default
