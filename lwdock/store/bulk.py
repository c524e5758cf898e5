"""Bulk load: many learnwares into a dock at once, for benchmarks and migrations.

:func:`bulk_load` writes entries straight into the index in sessions of ``chunk`` entries (one
generation step and one :class:`~lwdock.store.events.DockChanged` each), so the summary and
every other attached listener follow as they do for a submit, without a submit's checks, zip
reading or per-entry index session. Two uses, and only these:

* **Migrations** (``lwdock migrate``): the entries of another dock whose blobs were copied
  first (``blobs`` maps id -> zip file; each is stored and verified by hash before the entry).
* **Benchmarks**: synthetic entries without blobs (``blobs=None``), to build docks of a million
  learnwares in minutes. Such a dock is not a real one: ``doctor`` reports every entry's missing
  blob, and a search store for it must be written separately
  (:func:`lwdock.search.store.bulk_load`, with the dock's generation).

Nothing here checks a learnware: an entry is stored as given (its status included). Submit is
the path for learnwares from people.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConflictError
from ..records import Entry

if TYPE_CHECKING:  # the Dock calls nothing here; this module calls the Dock
    from .dock import Dock

DEFAULT_CHUNK = 50_000


def _chunks(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def bulk_load(dock: Dock, entries: Iterable[Entry], *, blobs: Mapping[str, str | os.PathLike[str]] | None = None,
              chunk: int = DEFAULT_CHUNK) -> int:
    """Add ``entries`` to ``dock``'s index (ids and aliases must be new). Returns how many."""
    n = 0
    for part in _chunks(entries, chunk):
        if blobs is not None:
            for e in part:
                dock.store_blob(Path(blobs[e.id]), e)
        n += dock.insert_entries(part)
    return n


def check_new(existing: Iterable[str], aliases: Mapping[str, str], part: list[Entry]) -> None:
    """ConflictError when an id or alias of ``part`` is taken (or repeated within it)."""
    seen = set(existing)
    taken = dict(aliases)
    for e in part:
        if e.id in seen:
            raise ConflictError(f"learnware {e.short_id} is already in the dock")
        seen.add(e.id)
        if e.alias:
            if e.alias in taken:
                raise ConflictError(f"alias {e.alias!r} is already in use")
            taken[e.alias] = e.id
