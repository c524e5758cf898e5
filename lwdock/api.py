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
from typing import TYPE_CHECKING, Any

from .errors import AmbiguousIdError, NotFoundError, UsageError
from .records import Entry
from .search.semantic import SemanticQuery
from .store import dock as _store
from .store.events import DerivedData, DockChanged

if TYPE_CHECKING:
    from .reuse.api import Ensemble
    from .search.result import SearchResult

__all__ = ["Dock", "search"]

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

    def rows(self, generation: int | None = None) -> Any:
        """The summary at the index's generation (call under the dock lock; caught up first):
        the semantic filter's row source for ``list`` and ``search``. ``generation``: the index's,
        when the caller read it under the same hold of the lock."""
        if self.is_team:  # the filters run as SQL on the team index (lwdock.store.pgindex.PgRows)
            return self.backend.rows()
        from .store import summary

        return summary.current(self, generation)

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

    def get(self, ref: str, *, full: bool = False) -> Entry:
        """The learnware ``ref`` names: an alias, an id or unique id prefix, else a unique
        learnware name (several learnwares with that name: AmbiguousIdError listing them)."""
        try:
            return super().get(ref, full=full)
        except NotFoundError:
            named = [e for e in self.entries() if e.semantic.name == ref.strip()]
            if not named:
                raise
            if len(named) > 1:
                shown = ", ".join(f"{e.id[:12]} ({e.created})" for e in named[:5])
                raise AmbiguousIdError(f"{len(named)} learnwares are named {ref!r}: {shown}",
                                       hint="give an id prefix or alias instead") from None
            return super().get(named[0].id, full=full)

    def search(self, data: Any = None, *, spec: Any = None, **options: Any) -> SearchResult:
        """Learnwares that match your data: :func:`lwdock.search` on this dock (see there)."""
        return search(self, data, spec=spec, **options)

    def reuse(self, learnwares: Any, method: str = "average", **options: Any) -> Ensemble:
        """An ensemble of ``learnwares`` (refs, or a :class:`~lwdock.SearchResult`):
        :func:`lwdock.reuse` on this dock. Close it, or use it in a ``with`` block."""
        from .reuse.api import reuse  # numpy and scikit-learn: only when reusing

        return reuse(self, learnwares, method, **options)

    def info(self) -> dict[str, Any]:
        """The dock's path, settings and learnware counts by status."""
        entries = self.entries()
        by_status: dict[str, int] = {}
        for e in entries:
            by_status[e.status] = by_status.get(e.status, 0) + 1
        return {"path": str(self.path), **self.settings, "learnwares": len(entries), "by_status": by_status}


def search(dock: Dock, data: Any = None, *, spec: Any = None, **options: Any) -> SearchResult:
    """Search ``dock`` by your data and/or semantic filters (``name``, ``task``, ``data_type``, ...).

    ``data``: a file path (table .csv/.npy/.npz, images .npy, texts .txt/.jsonl/.csv), or the
    rows themselves: a 2-D array or DataFrame (a table), an N x C x H x W array (images) or a
    list of strings (texts). Its RKME specification is fitted here; no rows leave. ``spec``: a
    ready specification (fitted object, dict or file) instead of data. The other keywords are
    those of :func:`lwdock.search.api.search` (``k``, ``max_mixture``, ``text_field``, ...).
    """
    from .search.api import search as run_search  # numpy and the kernels: only when searching

    if data is not None and not isinstance(data, (str, os.PathLike)):
        if spec is not None:
            raise TypeError("give data or spec, not both")
        spec, data = spec_of_rows(data, embedder=options.get("embedder")), None
    return run_search(dock, spec, data=data, **options)


def spec_of_rows(rows: Any, *, gamma: float | None = None, embedder: str | None = None) -> Any:
    """The RKME specification of in-memory rows, fitted as ``lwdock search --data`` fits a file's:
    a list of strings (texts), an N x C x H x W array (images), anything 2-D such as a DataFrame
    (a table: the scale-free automatic fit unless an expert gives ``gamma``)."""
    from .spec.rkme_image import RKMEImageSpec  # torch: only for image rows
    from .spec.rkme_table import RKMETableSpec
    from .spec.rkme_text import RKMETextSpec

    if isinstance(rows, (list, tuple)) and rows and all(isinstance(r, str) for r in rows):
        return RKMETextSpec(K=100, random_state=0, **({"embedder": embedder} if embedder else {})).fit(list(rows))
    if getattr(rows, "ndim", 2) == 4:
        return RKMEImageSpec(K=50, random_state=0).fit(rows)
    return RKMETableSpec(gamma=gamma, K=100, random_state=0).fit(rows)


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

