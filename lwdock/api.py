"""The dock as the CLI and the Python API use it: the store's Dock with its derived data wired in.

This is the one place that composes the layers. The store emits change events and knows no
consumer; search keeps its cache from those events and knows the dock only through what it
reads. :class:`Dock` subscribes the search cache and the hetero index (``lwdock.hetero``) to
every dock it opens (so ``doctor`` checks and rebuilds them too) and takes the semantic filters
of :meth:`Dock.list` as keywords.

``lwdock.Dock`` is this class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import Entry
from .search.semantic import SemanticQuery
from .store import dock as _store
from .store.events import DerivedData, DockChanged

__all__ = ["Dock"]

logger = logging.getLogger("lwdock")

# lwdock.search.cache and lwdock.hetero import numpy (the hetero map also torch); they are
# imported when first used, not when a dock is opened, so `lwdock list` and `lwdock show` stay
# cheap (see tests/test_imports.py).


class Dock(_store.Dock):
    """A learnware dock whose search cache follows every change. See :class:`lwdock.store.dock.Dock`."""

    def __init__(self, path: str | os.PathLike[str], **kw: Any) -> None:
        super().__init__(Path(path), **kw)
        self.attach(search_cache(self))
        self.attach(hetero_index(self))

    def list(  # type: ignore[override]  # adds keyword filters to the store's list(query)
        self,
        query: SemanticQuery | None = None,
        *,
        status: str | Sequence[str] | None = None,
        **filters: Any,
    ) -> list[Entry]:
        """Learnwares newest first, filtered by status and by the semantic rules of
        :class:`~lwdock.search.semantic.SemanticQuery` (the same rules as search): ``name``,
        ``description_like``, ``data_type``, ``task``, ``library``, ``scenario``, ``license``,
        ``ids`` (each a value or a list of values; any value may match)."""
        if filters:
            if query is not None:
                raise TypeError("give a query or keyword filters, not both")
            query = SemanticQuery.from_filters(**filters)
        return super().list(query, status=status)


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

