"""The TinyDB index: metadata only, sharded, written atomically, used only under the dock lock.

TinyDB rewrites a whole file on every change, so one file for the whole dock
makes each submit cost O(dock size) (measured: 2.4 s per submit at 10,000
entries). The index is therefore split into 256 TinyDB files by the first two
hex digits of the id, plus one small ``meta.json`` holding the generation
counter and the alias map::
    <dock>/index/meta.json     {"meta": {"1": {"generation": n, "aliases": {alias: id}}}}
    <dock>/index/3f.json       {"learnwares": {...entries whose id starts with 3f...}}
    <dock>/index/generation    the generation alone (written last), for readers that need only it

A session reads each file at most once and writes each changed file once, at
the end, through a temp file and ``os.replace``. ``meta.json`` is written
before the shards, so a crash between the two can only leave the generation
ahead of the data (a harmless extra search-cache refresh) or an alias pointing
at a missing entry (ignored on lookup, repaired by ``doctor``).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._atomic import write_atomic
from ..errors import DockError
from ..records import Entry

# tinydb is imported where it is used: `lwdock --help` and `lwdock list` must not pay for it
# before they touch the index (see tests/test_imports.py).

LEARNWARES = "learnwares"
META = "meta"
SHARDS = [f"{i:02x}" for i in range(256)]


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
                    f"the dock index file {self.path} is corrupt ({exc.msg} at byte {exc.pos})",
                    hint="run `lwdock doctor --rebuild-index` to rebuild it from the stored learnwares",
                ) from None

        def write(self, data: dict[str, Any]) -> None:
            write_atomic(self.path, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

        def close(self) -> None:
            pass

    return AtomicJSONStorage


class _File:
    """One TinyDB file held for a session: read once, written once."""

    def __init__(self, path: Path) -> None:
        from tinydb import TinyDB
        from tinydb.middlewares import CachingMiddleware

        self.middleware = CachingMiddleware(_storage_class())
        self.middleware.WRITE_CACHE_SIZE = 1 << 30  # flush only at the end of the session
        self.db = TinyDB(str(path), storage=self.middleware)

    def flush(self) -> None:
        self.middleware.flush()  # writes only when something changed


class Index:
    """Typed access to the sharded index. Create through :func:`open_index` only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, _File] = {}
        self._changed = False

    def _file(self, name: str) -> _File:
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = _File(self.directory / f"{name}.json")
        return f

    def _shard(self, lw_id: str):  # type: ignore[no-untyped-def]
        return self._file(lw_id[:2].lower()).db.table(LEARNWARES, cache_size=0)

    def _meta(self) -> dict[str, Any]:
        table = self._file("meta").db.table(META, cache_size=0)
        doc = table.get(doc_id=1)
        return dict(doc) if doc else {"generation": 0, "aliases": {}}

    def _set_meta(self, doc: dict[str, Any]) -> None:
        table = self._file("meta").db.table(META, cache_size=0)
        if table.contains(doc_id=1):
            table.update(doc, doc_ids=[1])
        else:
            table.insert(doc)

    def _touch(self, alias_changes: dict[str, str | None] | None = None, at_least: int = 0) -> None:
        meta = self._meta()
        if not self._changed:  # one generation step per session
            meta["generation"] = max(int(meta.get("generation", 0)) + 1, at_least)
            self._changed = True
        aliases = dict(meta.get("aliases") or {})
        for alias, lw_id in (alias_changes or {}).items():
            if lw_id is None:
                aliases.pop(alias, None)
            else:
                aliases[alias] = lw_id
        meta["aliases"] = aliases
        self._set_meta(meta)

    # reads -----------------------------------------------------------------
    def all(self) -> list[Entry]:
        out: list[Entry] = []
        # Parsing JSON makes no reference cycles, but the many dicts it allocates would trigger
        # the cyclic GC over and over on a growing heap (measured: 5x slower at 10,000 entries).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for name in SHARDS:
                if (self.directory / f"{name}.json").exists() or name in self._files:
                    out.extend(map(Entry.from_dict, self._file(name).db.table(LEARNWARES, cache_size=0).all()))
        finally:
            if was_enabled:
                gc.enable()
        return out

    def get(self, lw_id: str) -> Entry | None:
        from tinydb import Query

        doc = self._shard(lw_id).get(Query().id == lw_id)
        return Entry.from_dict(doc) if doc is not None else None

    def get_many(self, ids: Sequence[str]) -> list[Entry | None]:
        """The entries of ``ids`` (None where absent), in that order."""
        if len(ids) > 64:  # one read of every shard beats a scan of a shard per id
            by_id = {e.id: e for e in self.all()}
            return [by_id.get(i) for i in ids]
        return [self.get(i) for i in ids]

    def with_prefix(self, prefix: str) -> list[Entry]:
        """Entries whose id starts with ``prefix`` (at least 2 hex digits)."""
        return [Entry.from_dict(d) for d in self._shard(prefix).all() if d["id"].startswith(prefix)]

    def alias_target(self, alias: str) -> str | None:
        return self.aliases().get(alias)

    def aliases(self) -> dict[str, str]:
        """The alias map (alias -> id) as ``meta.json`` holds it."""
        return dict(self._meta().get("aliases") or {})

    def generation(self) -> int:
        """The generation counter. Read from the one-number ``generation`` file that every write
        session leaves beside ``meta.json``: ``meta.json`` also holds the alias map (megabytes at a
        million learnwares), and `list` and search ask the generation on every call."""
        if not self._changed and "meta" not in self._files:
            try:
                return int((self.directory / GENERATION_FILE).read_text())
            except (OSError, ValueError):  # a dock written before the file existed, or damaged
                pass
        return int(self._meta().get("generation", 0))

    # writes ----------------------------------------------------------------
    def insert(self, entry: Entry) -> None:
        self._touch({entry.alias: entry.id} if entry.alias else None)
        self._shard(entry.id).insert(index_entry(entry))

    def insert_many(self, entries: Sequence[Entry]) -> None:
        """Insert ``entries`` (new ids, free aliases: the caller checks) shard by shard (bulk load)."""
        self._touch({e.alias: e.id for e in entries if e.alias})
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for e in entries:
            by_shard.setdefault(e.id[:2].lower(), []).append(index_entry(e))
        for docs in by_shard.values():
            self._shard(docs[0]["id"]).insert_multiple(docs)

    def update(self, entry: Entry) -> None:
        """Store ``entry`` (alias, status, check) in place of the entry with its id."""
        from tinydb import Query

        old = self.get(entry.id)
        changes: dict[str, str | None] = {}
        if old is not None and old.alias != entry.alias:
            if old.alias:
                changes[old.alias] = None
            if entry.alias:
                changes[entry.alias] = entry.id
        self._touch(changes)
        doc = index_entry(entry)
        self._shard(entry.id).update({k: doc[k] for k in ("alias", "status", "check")}, Query().id == entry.id)

    def remove(self, lw_id: str) -> None:
        from tinydb import Query

        old = self.get(lw_id)
        self._touch({old.alias: None} if old is not None and old.alias else None)
        self._shard(lw_id).remove(Query().id == lw_id)

    def set_aliases(self, aliases: dict[str, str]) -> None:
        """Replace the alias map (``doctor`` rebuilds it from the entries). Search caches do not
        hold aliases, so this is not a new generation."""
        meta = self._meta()
        meta["aliases"] = dict(aliases)
        self._set_meta(meta)

    def replace_all(self, entries: Iterable[Entry | Mapping[str, Any]]) -> None:
        """Replace every entry (``doctor --rebuild-index``; accepts records or manifest documents)."""
        docs = [index_entry(Entry.coerce(e)) for e in entries]
        by_shard: dict[str, list[dict[str, Any]]] = {name: [] for name in SHARDS}
        for doc in docs:
            by_shard[doc["id"][:2]].append(doc)
        # a rebuilt index must never reuse a generation an old search cache may hold
        self._touch(at_least=time.time_ns() // 1_000_000)
        meta = self._meta()
        meta["aliases"] = {d["alias"]: d["id"] for d in docs if d.get("alias")}
        self._set_meta(meta)
        for name, items in by_shard.items():
            path = self.directory / f"{name}.json"
            if not items and not path.exists():
                continue
            table = self._file(name).db.table(LEARNWARES, cache_size=0)
            table.truncate()
            if items:
                table.insert_multiple(items)

    def flush(self) -> None:
        meta = self._files.get("meta")
        if meta is not None:
            meta.flush()  # meta first: see the module docstring
        for name, f in self._files.items():
            if name != "meta":
                f.flush()
        if self._changed or (meta is not None and not (self.directory / GENERATION_FILE).exists()):
            # last: a crash before this leaves the file behind meta.json, which only makes readers
            # catch their derived data up (the value is never reused for another state)
            write_atomic(self.directory / GENERATION_FILE, str(self.generation()).encode())


GENERATION_FILE = "generation"


class TinyBackend:
    """The local TinyDB index of a dock (the default): sessions under the dock lock."""

    kind = "tinydb"
    url = "tinydb"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def session(self) -> Iterator[Index]:
        with open_index(self.directory) as idx:
            yield idx

    def close(self) -> None:
        """Nothing to close: each session opens its files."""


def index_entry(entry: Entry | Mapping[str, Any]) -> dict[str, Any]:
    """The document the index keeps for ``entry``: everything but the full check report, which
    stays in the manifest (see :meth:`CheckReport.compact`)."""
    entry = Entry.coerce(entry)
    return {**entry.to_dict(), "check": entry.check.compact()}


@contextmanager
def open_index(directory: Path) -> Iterator[Index]:
    """Open the index for one locked session; changes are written once, at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    idx = Index(directory)
    yield idx  # on an exception nothing is flushed: the files on disk stay as they were
    idx.flush()
