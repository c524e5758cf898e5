"""The dock as the CLI and the Python API use it: the store's Dock with its derived data wired in.

This is the one place that composes the layers. The store emits change events and knows no
consumer; search keeps its cache from those events and knows the dock only through what it
reads. :class:`Dock` attaches the search cache, the summary (the filterable fields in columns,
:mod:`lwdock.store.summary`) and the hetero index (``lwdock.hetero``) to every dock it opens (so
``doctor`` checks and rebuilds them too), filters :meth:`Dock.list` and search through the
summary, and takes the semantic filters of :meth:`Dock.list` as keywords.

``lwdock.Dock`` is this class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UsageError
from .records import Entry
from .search.semantic import SemanticQuery
from .store import dock as _store
from .store.events import DerivedData, DockChanged

__all__ = ["Dock"]

logger = logging.getLogger("lwdock")

# lwdock.search.cache, lwdock.store.summary and lwdock.hetero import numpy (the hetero map also torch); they are
# imported when first used, not when a dock is opened, so `lwdock list` and `lwdock show` stay
# cheap (see tests/test_imports.py).


class Dock(_store.Dock):
    """A learnware dock whose search cache follows every change. See :class:`lwdock.store.dock.Dock`."""

    def __init__(self, path: str | os.PathLike[str], **kw: Any) -> None:
        super().__init__(Path(path), **kw)
        self.attach(search_cache(self))
        self.attach(summary_data(self))
        self.attach(hetero_index(self))

    def rows(self) -> Any:
        """The summary at the index's generation (call under the dock lock; caught up first):
        the semantic filter's row source for ``list`` and ``search``."""
        if self.is_team:  # the filters run as SQL on the team index (lwdock.store.pgindex.PgRows)
            return self.backend.rows()
        from .store import summary

        return summary.current(self)

    def list(  # type: ignore[override]  # adds keyword filters, a limit and brief rows to the store's list
        self,
        query: SemanticQuery | None = None,
        *,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        brief: bool = False,
        **filters: Any,
    ) -> list[Entry]:
        """Learnwares newest first, filtered by status and by the semantic rules of
        :class:`~lwdock.search.semantic.SemanticQuery` (the same rules as search): ``name``,
        ``description_like``, ``data_type``, ``task``, ``library``, ``scenario``, ``license``,
        ``ids`` (each a value or a list of values; any value may match). ``limit``: the newest
        ``limit`` only. ``brief``: entries holding the summary's fields only (id, alias, status,
        created, Name, Data, Task, Library, License, Scenario, spec kinds and dimension; what
        ``lwdock list`` prints), read without touching the index; otherwise full index entries."""
        if filters:
            if query is not None:
                raise TypeError("give a query or keyword filters, not both")
            query = SemanticQuery.from_filters(**filters)
        wanted = _store.check_statuses(status)
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be at least 0, got {limit}")
        with self.lock():
            rows = self.rows()
            sel = rows.start()
            if wanted:
                sel = rows.keep_status(sel, set(wanted))
            if query is not None:
                sel = query.apply(rows, sel)
            picked = rows.newest(sel, limit)
            if brief:
                return rows.entries(picked)
            ids = rows.ids(picked)
        return self.get_many(ids)


def search_cache(dock: _store.Dock) -> DerivedData:
    """The search cache of ``dock`` as derived data: updated on every change, checked by doctor."""
    def on_change(event: DockChanged) -> None:
        from .search import cache

        cache.on_change(dock, added=list(event.added), removed=list(event.removed))

    def is_stale() -> bool:
        from .search import cache

        return cache.is_stale(dock)

    def rebuild() -> object:
        from .search import cache

        return cache.rebuild(dock)

    return DerivedData("search cache", on_change=on_change, is_stale=is_stale, rebuild=rebuild)


def summary_data(dock: _store.Dock) -> DerivedData:
    """The summary of ``dock`` as derived data (see :func:`lwdock.store.summary.derived`)."""
    def on_change(event: DockChanged) -> None:
        from .store import summary

        if not dock.is_team:  # a team index filters in SQL: no summary
            summary.on_change(dock, event)

    def is_stale() -> bool:
        from .store import summary

        return not dock.is_team and bool(summary.problems(dock))

    def rebuild() -> object:
        from .store import summary

        return summary.rebuild(dock)

    return DerivedData("summary", on_change=on_change, is_stale=is_stale, rebuild=rebuild)


def hetero_index(dock: _store.Dock) -> DerivedData:
    """The hetero index of ``dock`` (lwdock.hetero) as derived data: column stats and importance
    recorded on every change (one sandboxed model run per new eligible learnware), checked and
    repaired by doctor."""
    def run(entry: Entry, X: Any) -> Any:
        from .reuse.probe import predict_once

        return predict_once(dock, entry, X)

    def on_change(event: DockChanged) -> None:
        from .hetero import maintain

        maintain.on_change(dock, list(event.added), list(event.removed), run)

    def is_stale() -> bool:
        from .hetero import doctor

        found = doctor.problems(dock)
        for problem in found:
            logger.warning("hetero index: %s", problem)
        return bool(found)

    def rebuild() -> object:
        from .hetero import doctor

        return doctor.repair(dock, run)

    return DerivedData("hetero index", on_change=on_change, is_stale=is_stale, rebuild=rebuild)

