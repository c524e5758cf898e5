"""The TinyDB index: metadata only, written atomically, used only under the dock lock.

Each ``Index`` session reads the file once and writes it once (TinyDB's
CachingMiddleware), and the write goes to a temp file that replaces the index
with ``os.replace``, so a reader never sees a half-written file and a killed
writer leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import DockError

LEARNWARES = "learnwares"
META = "meta"


def _storage_class():  # type: ignore[no-untyped-def]
    from tinydb.storages import Storage

    class AtomicJSONStorage(Storage):
        def __init__(self, path: str) -> None:
            self.path = Path(path)

        def read(self) -> dict[str, Any] | None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise DockError(
                    f"the dock index {self.path} is corrupt ({exc.msg} at byte {exc.pos})",
                    hint="run `lwdock doctor --rebuild-index` to rebuild it from the stored learnwares",
                ) from None

        def write(self, data: dict[str, Any]) -> None:
            write_atomic(self.path, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

        def close(self) -> None:
            pass

    return AtomicJSONStorage


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temp file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Index:
    """Typed access to the index tables. Create through :func:`open_index` only."""

    def __init__(self, db) -> None:  # type: ignore[no-untyped-def]
        self._db = db
        self._lw = db.table(LEARNWARES, cache_size=0)
        self._meta = db.table(META, cache_size=0)

    # learnwares ----------------------------------------------------------
    def all(self) -> list[dict[str, Any]]:
        return [dict(doc) for doc in self._lw.all()]

    def ids(self) -> list[str]:
        return [doc["id"] for doc in self._lw.all()]

    def get(self, lw_id: str) -> dict[str, Any] | None:
        from tinydb import Query

        doc = self._lw.get(Query().id == lw_id)
        return dict(doc) if doc is not None else None

    def insert(self, entry: dict[str, Any]) -> None:
        self._lw.insert(entry)
        self._bump()

    def update(self, lw_id: str, fields: dict[str, Any]) -> None:
        from tinydb import Query

        self._lw.update(fields, Query().id == lw_id)
        self._bump()

    def remove(self, lw_id: str) -> None:
        from tinydb import Query

        self._lw.remove(Query().id == lw_id)
        self._bump()

    def replace_all(self, entries: list[dict[str, Any]]) -> None:
        import time

        self._lw.truncate()
        self._lw.insert_multiple(entries)
        # a rebuilt index must never reuse a generation an old search cache may hold
        self._bump(at_least=time.time_ns() // 1_000_000)

    # meta ------------------------------------------------------------------
    def generation(self) -> int:
        doc = self._meta.get(doc_id=1)
        return int(doc["generation"]) if doc else 0

    def _bump(self, at_least: int = 0) -> None:
        gen = max(self.generation() + 1, at_least)
        if self._meta.contains(doc_id=1):
            self._meta.update({"generation": gen}, doc_ids=[1])
        else:
            self._meta.insert({"generation": gen})


@contextmanager
def open_index(path: Path) -> Iterator[Index]:
    """Open the index for one locked session; changes are written once, at the end."""
    from tinydb import TinyDB
    from tinydb.middlewares import CachingMiddleware

    middleware = CachingMiddleware(_storage_class())
    middleware.WRITE_CACHE_SIZE = 1 << 30  # flush only on close
    db = TinyDB(str(path), storage=middleware)
    try:
        yield Index(db)
    except BaseException:
        # drop unwritten changes: the on-disk index stays as it was
        middleware.cache = None
        middleware._cache_modified_count = 0
        raise
    else:
        if middleware._cache_modified_count:
            middleware.flush()
