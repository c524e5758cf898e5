"""The PostgreSQL index of a team dock: the same sessions as the TinyDB index, in transactions.

A team dock keeps its index in one PostgreSQL database that every machine of the team uses
(``lwdock init --index postgresql://...``); docs/team.md says how to set one up. Differences
from the TinyDB index (:mod:`lwdock.store.index`), and why:

* **Transactions, not the file lock.** A session is one transaction. Its first write bumps the
  one-row ``dock_counter`` (``UPDATE ... RETURNING``): the row lock serialises the (short)
  commits of every writer on every machine, so generations become visible in order and without
  gaps (a sequence would not: generation 11 could commit before 10). Ids and aliases are
  constraints, so two writers racing for one end in one :class:`ConflictError`, never two winners.
* **Per-learnware advisory locks** (:meth:`PgBackend.writing`) are held for a whole submit or
  remove, blob upload included. The server drops them when the holder's connection dies (TCP
  keepalives notice a dead machine in about a minute), so ``doctor`` tells a dead writer's
  leftovers (lock free) from a live upload (lock held) on any machine.
* **Filters in SQL.** Lowercased filter columns, derived from the entry when it is written, with
  indexes; ``list`` and search's semantic filter run as SQL (:class:`PgRows`) and fetch only the
  page or the ids they need. The ~1 KB entry document is TOASTed (``toast_tuple_target``) so scans
  read ~200-byte rows.
* **A change log** (``changes``): what each generation did, for caches on other machines.
* **Nested sessions read committed state** through a second connection: a listener that asks
  the generation inside a write session gets the one before the change, as with TinyDB.

psycopg (3) is imported only here, and only when a dock's index is PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConflictError, DockError, NotFoundError
from ..records import Entry
from .index import index_entry

logger = logging.getLogger("lwdock")

SCHEMA_VERSION = 1
SCHEMA = r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS dock_meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS dock_counter (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL
);
INSERT INTO dock_counter (one, generation) VALUES (true, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS learnwares (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    rowkey      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,   -- index order (insertion)
    alias       text UNIQUE,
    alias_lower text,
    status      text NOT NULL,
    data_type   text, task text, library text, license text,  -- first value, lowercased
    scenarios   text[] NOT NULL DEFAULT '{}',                 -- lowercased tags
    dimension   int,
    spec_kinds  text[] NOT NULL DEFAULT '{}',
    name_lower  text NOT NULL DEFAULT '',
    desc_lower  text NOT NULL DEFAULT '',
    created     text NOT NULL DEFAULT '',                     -- as stored: `list` sorts by (created, id)
    generation  bigint NOT NULL,
    entry       jsonb NOT NULL,
    -- name, description and alias for `--name`, separated by a character a filter never holds
    search_text text GENERATED ALWAYS AS (name_lower || chr(31) || desc_lower || chr(31) || coalesce(alias_lower, ''))
        STORED
) WITH (toast_tuple_target = 128);
CREATE INDEX IF NOT EXISTS lw_created ON learnwares (created DESC, id DESC);
CREATE INDEX IF NOT EXISTS lw_status ON learnwares (status, created DESC);
CREATE INDEX IF NOT EXISTS lw_semantic ON learnwares (data_type, task, library, license);
CREATE INDEX IF NOT EXISTS lw_alias_lower ON learnwares (alias_lower);
CREATE INDEX IF NOT EXISTS lw_scenarios ON learnwares USING gin (scenarios);
CREATE INDEX IF NOT EXISTS lw_text_trgm ON learnwares USING gin (search_text gin_trgm_ops);
CREATE TABLE IF NOT EXISTS changes (
    generation bigint NOT NULL,
    id text COLLATE "C",
    op text NOT NULL CHECK (op IN ('add', 'remove', 'update', 'reset')),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS changes_gen ON changes (generation);
CREATE TABLE IF NOT EXISTS tombstones (
    id text COLLATE "C" PRIMARY KEY, removed_at timestamptz NOT NULL DEFAULT now(), generation bigint NOT NULL
);
INSERT INTO dock_meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;
"""
COLUMNS = ("id", "alias", "alias_lower", "status", "data_type", "task", "library", "license", "scenarios",
           "dimension", "spec_kinds", "name_lower", "desc_lower", "created", "generation", "entry")
_SCHEMA_LOCK = 7478626  # advisory lock around the DDL: two machines running `init` at once


def _psycopg():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        raise DockError("this dock's index is PostgreSQL, but psycopg is not installed",
                        hint="pip install 'lwdock[team]'") from None
    return psycopg


def row_of(entry: Entry, generation: int) -> tuple[Any, ...]:
    """The columns of one entry: its index document and the lowercased filter fields."""
    from psycopg.types.json import Jsonb

    doc = index_entry(entry)
    sem = entry.semantic
    dims = [s.dim for s in entry.specs if s.dim is not None]
    low = [None if v is None else v.lower() for v in (sem.data_type, sem.task, sem.library, sem.license)]
    return (entry.id, entry.alias, entry.alias.lower() if entry.alias else None, entry.status, *low,
            [t.lower() for t in sem.scenarios], dims[0] if dims else None,
            list(dict.fromkeys(s.kind for s in entry.specs if s.kind)), sem.name.lower(), sem.description.lower(),
            entry.created, generation, Jsonb(doc))


def lock_key(lw_id: str) -> int:
    """The advisory-lock key of an id: its first 64 bits as a signed bigint."""
    return int.from_bytes(bytes.fromhex(lw_id[:16]), "big", signed=True)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PgBackend:
    """One dock's PostgreSQL index, for one process: a connection for sessions and one for reads
    that must see committed state (opened when first needed)."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._reader: Any = None
        self._depth = 0  # write sessions open on the main connection

    def _connect(self) -> Any:
        psycopg = _psycopg()
        try:
            # keepalives: a writer whose machine dies loses its session (and its advisory locks) in
            # about a minute instead of the kernel's two hours
            return psycopg.connect(self.url, autocommit=True, application_name="lwdock", connect_timeout=10,
                                   keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        except psycopg.OperationalError as exc:
            raise DockError(f"cannot reach the dock's PostgreSQL index: {str(exc).strip().splitlines()[0]}",
                            hint="check the server, the URL in dock.json, PGPASSWORD or ~/.pgpass") from None

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @property
    def reader(self) -> Any:
        if self._reader is None or self._reader.closed:
            self._reader = self._connect()
        return self._reader

    def close(self) -> None:
        for c in (self._conn, self._reader):
            if c is not None and not c.closed:
                c.close()
        self._conn = self._reader = None

    # -- schema and dock settings -------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self.conn.execute(SCHEMA)
            version = int(self.meta("schema_version") or 0)
            if version > SCHEMA_VERSION:
                raise DockError(f"the team index has schema version {version}; this lwdock reads up to "
                                f"{SCHEMA_VERSION}", hint="upgrade lwdock")

    def meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM dock_meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta_once(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` unless a value is there; returns the stored one."""
        from psycopg.types.json import Jsonb

        self.conn.execute("INSERT INTO dock_meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (key, Jsonb(value)))
        return self.meta(key)

    def has_schema(self) -> bool:
        row = self.conn.execute("SELECT to_regclass('learnwares') IS NOT NULL").fetchone()
        return bool(row[0])

    # -- sessions -------------------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[PgSession]:
        """One index session: a transaction, or (nested in one) a read of committed state."""
        if self._depth:
            yield PgSession(self.reader, writable=False)
            return
        self._depth += 1
        try:
            with self.conn.transaction():
                yield PgSession(self.conn, writable=True)
        finally:
            self._depth -= 1

    @contextmanager
    def writing(self, lw_id: str) -> Iterator[None]:
        """Hold ``lw_id``'s advisory lock (every machine) for a whole submit or remove."""
        key = lock_key(lw_id)
        self.reader.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            if not self.reader.closed:
                self.reader.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def rows(self) -> PgRows:
        """The semantic filter's row source over committed state (``list``, search)."""
        return PgRows(self.reader if self._depth else self.conn)

    def try_writing(self, lw_id: str) -> bool:
        """Take ``lw_id``'s lock if no live session holds it (True: its leftovers are garbage);
        release it with :meth:`done_writing`."""
        row = self.reader.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(lw_id),)).fetchone()
        return bool(row[0])

    def done_writing(self, lw_id: str) -> None:
        self.reader.execute("SELECT pg_advisory_unlock(%s)", (lock_key(lw_id),))

    def generation(self) -> int:
        conn = self.reader if self._depth else self.conn
        return int(conn.execute("SELECT generation FROM dock_counter").fetchone()[0])

    def changes_since(self, generation: int) -> tuple[int, list[tuple[int, str | None, str]]] | None:
        """(current generation, [(generation, id, op)]) after ``generation``, read in one snapshot;
        None when a reset (bulk rebuild) happened since: caches rebuild fully."""
        with self.reader.transaction():
            self.reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            gen = int(self.reader.execute("SELECT generation FROM dock_counter").fetchone()[0])
            rows = self.reader.execute("SELECT generation, id, op FROM changes WHERE generation > %s "
                                       "ORDER BY generation", (generation,)).fetchall()
        if generation > gen or any(op == "reset" for _, _, op in rows):
            return None
        return gen, [(int(g), i, op) for g, i, op in rows]


class PgSession:
    """The index session API of :class:`lwdock.store.index.Index`, on PostgreSQL."""

    def __init__(self, conn: Any, writable: bool) -> None:
        self.conn = conn
        self.writable = writable
        self._generation: int | None = None  # set by the first write

    def _write(self, op: str, ids: Iterable[str | None]) -> int:
        if not self.writable:
            raise DockError("internal: a write in a read-only index session")
        if self._generation is None:
            row = self.conn.execute("UPDATE dock_counter SET generation = generation + 1 RETURNING generation")
            self._generation = int(row.fetchone()[0])
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO changes (generation, id, op) VALUES (%s, %s, %s)",
                            [(self._generation, i, op) for i in ids])
        return self._generation

    @contextmanager
    def _conflicts(self, entries: Sequence[Entry]) -> Iterator[None]:
        """Unique violations as ConflictError, naming the alias or the learnware."""
        from psycopg import errors as pgerr

        try:
            yield
        except pgerr.UniqueViolation as exc:
            aliases = [e.alias for e in entries if e.alias]
            if "alias" in (exc.diag.constraint_name or ""):
                which = f" {aliases[0]!r}" if len(aliases) == 1 else ""
                raise ConflictError(f"alias{which} is already in use") from None
            which = f" {entries[0].short_id}" if len(entries) == 1 else "s"
            raise ConflictError(f"learnware{which} already in the dock") from None

    # -- reads --------------------------------------------------------------------------------------
    def generation(self) -> int:
        if self._generation is not None:
            return self._generation
        return int(self.conn.execute("SELECT generation FROM dock_counter").fetchone()[0])

    def all(self) -> list[Entry]:
        rows = self.conn.execute("SELECT entry FROM learnwares ORDER BY rowkey").fetchall()
        return [Entry.from_dict(r[0]) for r in rows]

    def get(self, lw_id: str) -> Entry | None:
        row = self.conn.execute("SELECT entry FROM learnwares WHERE id = %s", (lw_id,)).fetchone()
        return Entry.from_dict(row[0]) if row else None

    def get_many(self, ids: Sequence[str]) -> list[Entry | None]:
        rows = self.conn.execute("SELECT id, entry FROM learnwares WHERE id = ANY(%s)", (list(ids),)).fetchall()
        found = {i: Entry.from_dict(e) for i, e in rows}
        return [found.get(i) for i in ids]

    def with_prefix(self, prefix: str) -> list[Entry]:
        # id is COLLATE "C": LIKE 'ab%' is a range scan of the primary key in any database locale
        rows = self.conn.execute("SELECT entry FROM learnwares WHERE id LIKE %s ORDER BY rowkey",
                                 (like_escape(prefix) + "%",)).fetchall()
        return [Entry.from_dict(r[0]) for r in rows]

    def alias_target(self, alias: str) -> str | None:
        row = self.conn.execute("SELECT id FROM learnwares WHERE alias = %s", (alias,)).fetchone()
        return row[0] if row else None

    def aliases(self) -> dict[str, str]:
        rows = self.conn.execute("SELECT alias, id FROM learnwares WHERE alias IS NOT NULL").fetchall()
        return {a: i for a, i in rows}

    def ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM learnwares ORDER BY rowkey").fetchall()]

    # -- writes -------------------------------------------------------------------------------------
    def insert(self, entry: Entry) -> None:
        self.insert_many([entry])

    def insert_many(self, entries: Sequence[Entry]) -> None:
        gen = self._write("add", [e.id for e in entries])
        with self._conflicts(entries), self.conn.cursor() as cur:
            with cur.copy(f"COPY learnwares ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for e in entries:
                    row = list(row_of(e, gen))
                    row[-1] = json.dumps(index_entry(e), separators=(",", ":"))
                    copy.write_row(row)
            cur.execute("DELETE FROM tombstones WHERE id = ANY(%s)", ([e.id for e in entries],))

    def update(self, entry: Entry) -> None:
        """Store ``entry`` (alias, status, check) in place of the entry with its id."""
        gen = self._write("update", [entry.id])
        row = row_of(entry, gen)
        with self._conflicts([entry]):
            cur = self.conn.execute(
                f"UPDATE learnwares SET ({', '.join(COLUMNS[1:])}) = ({', '.join(['%s'] * (len(COLUMNS) - 1))}) "
                "WHERE id = %s", (*row[1:], entry.id))
        if cur.rowcount != 1:
            raise NotFoundError(f"no learnware with id {entry.id!r}")

    def remove(self, lw_id: str) -> None:
        gen = self._write("remove", [lw_id])
        cur = self.conn.execute("DELETE FROM learnwares WHERE id = %s", (lw_id,))
        if cur.rowcount != 1:
            raise NotFoundError(f"no learnware with id {lw_id!r}")
        self.conn.execute("INSERT INTO tombstones (id, generation) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE "
                          "SET generation = excluded.generation, removed_at = now()", (lw_id, gen))

    def set_aliases(self, aliases: Mapping[str, str]) -> None:
        """Aliases are a column here: the map cannot disagree with the entries."""

    def replace_all(self, entries: Iterable[Entry | Mapping[str, Any]]) -> None:
        """Replace every entry (``doctor --rebuild-index``); caches elsewhere rebuild fully."""
        records = [Entry.coerce(e) for e in entries]
        self._write("reset", [None])
        self.conn.execute("DELETE FROM learnwares")
        if records:
            self.insert_many(records)

    def flush(self) -> None:
        """Nothing: the transaction commits when the session ends."""


@dataclass(frozen=True)
class Selection:
    """A selection of :class:`PgRows`: a WHERE clause, and an order (index order unless a fuzzy
    stage or ``newest`` set one)."""

    where: tuple[str, ...] = ()
    args: tuple[Any, ...] = ()
    order: str = "rowkey"
    order_args: tuple[Any, ...] = ()
    limit: int | None = None

    def __getitem__(self, part: slice) -> Selection:
        """The first rows (``sel[:k]``, as search takes its page of a selection)."""
        if not isinstance(part, slice) or part.start not in (None, 0) or part.step not in (None, 1):
            raise TypeError("a selection of the SQL index takes only [:k]")
        if part.stop is None:
            return self
        return replace(self, limit=part.stop if self.limit is None else min(self.limit, part.stop))

    def keep(self, cond: str, *args: Any) -> Selection:
        return replace(self, where=(*self.where, cond), args=(*self.args, *args))

    def sql(self, columns: str) -> tuple[str, list[Any]]:
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        limit = f" LIMIT {int(self.limit)}" if self.limit is not None else ""
        return (f"SELECT {columns} FROM learnwares{where} ORDER BY {self.order}{limit}",
                [*self.args, *self.order_args])


_TEXT_COLUMNS = {"name": "name_lower", "description": "desc_lower", "alias": "coalesce(alias_lower, '')"}
_CLASS_COLUMNS = {"Data": "data_type", "Task": "task", "Library": "library", "License": "license"}


class PgRows:
    """The semantic filter's row source (:class:`lwdock.search.semantic.RowSource`) as SQL: each
    rule adds a condition; nothing is fetched until a count, a page or the ids are asked for."""

    brief = False  # entries come whole from the index

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _rows(self, sel: Selection, columns: str) -> list[tuple[Any, ...]]:
        sql, args = sel.sql(columns)
        return self.conn.execute(sql, args).fetchall()

    def start(self) -> Selection:
        return Selection()

    def size(self, sel: Selection) -> int:
        where = f" WHERE {' AND '.join(sel.where)}" if sel.where else ""
        sql = f"SELECT count(*) FROM learnwares{where}"
        if sel.limit is not None:
            sql = f"SELECT least(count(*), {int(sel.limit)}) FROM learnwares{where}"
        return int(self.conn.execute(sql, list(sel.args)).fetchone()[0])

    def status_counts(self) -> dict[str, int]:
        return {s: int(n) for s, n in self.conn.execute("SELECT status, count(*) FROM learnwares GROUP BY status")}

    def keep_status(self, sel: Selection, allowed: set[str]) -> Selection:
        return sel.keep("status = ANY(%s)", sorted(allowed))

    def keep_ids(self, sel: Selection, refs: list[str]) -> Selection:
        return sel.keep("(alias_lower = ANY(%s) OR id LIKE ANY(%s))", list(refs),
                        [like_escape(r) + "%" for r in refs])

    def keep_class(self, sel: Selection, key: str, wanted: set[str]) -> Selection:
        return sel.keep(f"{_CLASS_COLUMNS[key]} = ANY(%s)", sorted(wanted))

    def keep_tags(self, sel: Selection, key: str, wanted: set[str]) -> Selection:
        return sel.keep("scenarios && %s::text[]", sorted(wanted))

    def keep_substring(self, sel: Selection, needle: str, fields: tuple[str, ...]) -> Selection:
        pattern = "%" + like_escape(needle) + "%"
        if set(fields) == set(_TEXT_COLUMNS) and chr(31) not in needle:
            return sel.keep("search_text LIKE %s", pattern)  # one trigram-indexed column
        return sel.keep("(" + " OR ".join(f"{_TEXT_COLUMNS[f]} LIKE %s" for f in fields) + ")",
                        *([pattern] * len(fields)))

    def texts(self, sel: Selection, fields: tuple[str, ...]) -> list[list[str]]:
        rows = self._rows(sel, ", ".join(_TEXT_COLUMNS[f] for f in fields))
        return [[t for t in row if t] for row in rows]

    def take(self, sel: Selection, order: list[int]) -> Selection:
        ids = [r[0] for r in self._rows(sel, "id")]
        picked = [ids[j] for j in order]
        return replace(sel.keep("id = ANY(%s)", picked), order="array_position(%s, id)", order_args=(picked,))

    def newest(self, sel: Selection, limit: int | None) -> Selection:
        return replace(sel, order="created DESC, id DESC", order_args=(), limit=limit)

    # what search and list read of the rows they kept
    def entries(self, sel: Selection) -> list[Entry]:
        return [Entry.from_dict(r[0]) for r in self._rows(sel, "entry")]

    def ids(self, sel: Selection) -> list[str]:
        return [r[0] for r in self._rows(sel, "id")]

    def entries_by_id(self, ids: Iterable[str]) -> dict[str, Entry]:
        rows = self.conn.execute("SELECT id, entry FROM learnwares WHERE id = ANY(%s)", (list(ids),)).fetchall()
        return {i: Entry.from_dict(e) for i, e in rows}

    def count_kind(self, sel: Selection, kind: str) -> int:
        return self.size(sel.keep("status <> 'invalid' AND spec_kinds @> ARRAY[%s]::text[]", kind))
