"""The summary: the filterable fields of every learnware, in columns, memory-mapped.

``lwdock list`` and ``lwdock search`` need only a few fields of each learnware to filter it
(status, Data, Task, Library, License, Scenario, dimension, spec kinds, Name, Description,
alias, creation time). Reading them from the TinyDB index means parsing every entry (2.5 s and
2.3 GB at 100,000 learnwares); the summary keeps them beside the index as numpy columns that a
reader maps and touches only where it filters. TinyDB stays the source of truth for full
entries (``show``, ``Dock.get``); the summary is derived data, rebuilt from it by ``doctor``.

Layout (``<dock>/summary/``)::

    summary.json        format, generation, the base's name, rows added since it (``delta``),
                        base rows removed since it (``removed``), the next sequence number
    base-000001/        one immutable base (written under a temporary name, then renamed)
        ids.npy (N,) S64         key.npy (N,) int64: index order (shard << 40 | sequence), ascending
        created.npy (N,) S       status.npy (N,) int8 and data_type/task/library/license (N,) int32:
                                 codes into vocab.json (-1: no value)
        scen_off.npy (N+1,) scen.npy: Scenario codes, CSR   dim.npy (N,) int32 (-1: none)
        kinds.npy (N,) uint16: bit set of spec kinds (vocab.json)
        text.bin + text_off.npy (3N+1,): lowercased Name, Description, alias, each ended by NUL
        shown.bin + shown_off.npy (2N+1,): Name and alias as written (for output)
        by_id.npy: row order by id (lookups, id prefixes)   newest.npy: rows by (created, id), newest first

Consistency follows the search store's rules: the Dock calls :func:`on_change` inside its lock,
before its index session is written, and the summary records the generation that session will
write; ``summary.json`` is replaced atomically, so a reader sees one state. A reader under the
dock lock compares the generation with the index's and rebuilds the summary when they differ (a
process killed between the two writes, or a writer without the listener): a stale summary is
never used. A change adds to ``delta`` (a status or alias change is a removal plus an addition
with the same sequence number, so the row keeps its place); when ``delta`` passes
:func:`delta_limit` rows (about sqrt(N)), a new base is written (O(sqrt(N)) amortised per change).

"Index order" is the order ``Index.all()`` returns (shard by the id's first byte, insertion order
within a shard); the semantic filter's fuzzy stage breaks ties in it and a semantic-only search
lists its results in it, so the summary reproduces it.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._atomic import write_atomic
from ..records import Entry
from .events import DockChanged

logger = logging.getLogger("lwdock")

FORMAT = 1
META = "summary.json"
MAX_DELTA = 1024  # the most rows the delta holds before a new base is written
MIN_DELTA = 32  # ... and the fewest: a small dock keeps a small delta (every reader parses it)


def delta_limit(n_base: int) -> int:
    """How many changed rows the delta may hold over a base of ``n_base`` rows: about sqrt(N),
    between MIN_DELTA and MAX_DELTA. Every reader parses the delta (JSON), every base rewrite
    costs O(N): sqrt(N) keeps both small (a rewrite every sqrt(N) changes is O(sqrt(N)) per
    change; a reader parses at most sqrt(N) rows)."""
    return int(min(MAX_DELTA, max(MIN_DELTA, int(n_base**0.5))))
CLASS_COLUMNS = {"data_type": "Data", "task": "Task", "library": "Library", "license": "License"}
KEY_COLUMNS = {key: col for col, key in CLASS_COLUMNS.items()}
TEXT_FIELDS = ("name", "description", "alias")  # the order of the fields in text.bin
_SHARD_SHIFT = 40


# -- rows ------------------------------------------------------------------------------------
def row_of(entry: Entry, seq: int) -> dict[str, Any]:
    """The summary's fields of one learnware (as stored in ``summary.json``'s delta)."""
    sem = entry.semantic
    specs = entry.specs
    dims = [s.dim for s in specs if s.dim is not None]
    return {
        "id": entry.id, "seq": int(seq), "created": entry.created, "status": entry.status, "alias": entry.alias,
        **{col: sem.value(key) for col, key in CLASS_COLUMNS.items()},
        "scenarios": list(sem.scenarios), "dim": dims[0] if dims else None,
        "kinds": list(dict.fromkeys(s.kind for s in specs if s.kind)), "name": sem.name,
        "description": sem.description.lower(),  # matched, never shown: kept lowercased only
    }  # fmt: skip


def order_key(lw_id: str, seq: int) -> int:
    return (int(lw_id[:2], 16) << _SHARD_SHIFT) | int(seq)


def brief_entry(row: Mapping[str, Any]) -> Entry:
    """An :class:`Entry` holding only the summary's fields (no check report, requirements or
    spec files): what ``list`` prints and ``search`` returns. ``Dock.get`` gives the full one."""
    semantic: dict[str, Any] = {"Name": {"Type": "String", "Values": row.get("name") or ""}}
    for col, key in CLASS_COLUMNS.items():
        if row.get(col) is not None:
            semantic[key] = {"Type": "Class", "Values": [row[col]]}
    if row.get("scenarios"):
        semantic["Scenario"] = {"Type": "Tag", "Values": list(row["scenarios"])}
    if row.get("description"):
        semantic["Description"] = {"Type": "String", "Values": row["description"]}
    specs = [{"kind": k, "file_name": "", "class_name": ""} for k in row.get("kinds") or ()]
    if specs and row.get("dim") is not None:
        specs[0]["dim"] = int(row["dim"])
    return Entry.from_dict({"id": row["id"], "alias": row.get("alias"), "status": row.get("status") or "",
                            "created": row.get("created") or "", "semantic": semantic, "specs": specs,
                            "brief": True})


# -- writing a base ----------------------------------------------------------------------------
def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _codes(values: list[Any], vocab: list[str]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocab)}
    out = np.full(len(values), -1, dtype=np.int32)
    for i, v in enumerate(values):
        if v is not None:
            code = index.get(v)
            if code is None:
                code = index[v] = len(vocab)
                vocab.append(v)
            out[i] = code
    return out


def _blob(parts: Iterable[str], n_fields: int, n: int) -> tuple[bytes, np.ndarray]:
    """NUL-ended UTF-8 fields and the start of each (``n * n_fields + 1`` offsets)."""
    encoded = [p.encode("utf-8", "surrogatepass") + b"\0" for p in parts]
    lens = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n * n_fields)
    off = np.zeros(n * n_fields + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    return b"".join(encoded), off


def write_base(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write one base from ``rows`` (sorted here into index order)."""
    rows = sorted(rows, key=lambda r: order_key(r["id"], r["seq"]))
    n = len(rows)
    tmp = path.with_name(f".tmp-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vocab: dict[str, list[str]] = {"status": [], "scenario": [], "kinds": [], **{c: [] for c in CLASS_COLUMNS}}
    ids = np.array([r["id"].encode() for r in rows], dtype="S64")
    created = np.array([(r.get("created") or "").encode() for r in rows], dtype=bytes)
    _save(tmp / "ids.npy", ids)
    _save(tmp / "key.npy", np.array([order_key(r["id"], r["seq"]) for r in rows], dtype=np.int64))
    _save(tmp / "created.npy", created if n else np.zeros(0, dtype="S1"))
    _save(tmp / "status.npy", _codes([r.get("status") or "" for r in rows], vocab["status"]).astype(np.int8))
    for col in CLASS_COLUMNS:
        _save(tmp / f"{col}.npy", _codes([r.get(col) for r in rows], vocab[col]))
    tags = [r.get("scenarios") or [] for r in rows]
    scen_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(t) for t in tags], out=scen_off[1:])
    _save(tmp / "scen_off.npy", scen_off)
    _save(tmp / "scen.npy", _codes([t for ts in tags for t in ts], vocab["scenario"]))
    _save(tmp / "dim.npy", np.array([-1 if r.get("dim") is None else int(r["dim"]) for r in rows], dtype=np.int32))
    kinds = np.zeros(n, dtype=np.uint16)
    for i, r in enumerate(rows):
        for code in _codes(list(r.get("kinds") or ()), vocab["kinds"]):
            kinds[i] |= np.uint16(1 << int(code))
    _save(tmp / "kinds.npy", kinds)
    text, text_off = _blob((str(r.get(f) or "").lower() for r in rows for f in TEXT_FIELDS), 3, n)
    shown, shown_off = _blob((str(r.get(f) or "") for r in rows for f in ("name", "alias")), 2, n)
    for name, data in (("text.bin", text), ("shown.bin", shown)):
        with open(tmp / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    _save(tmp / "text_off.npy", text_off)
    _save(tmp / "shown_off.npy", shown_off)
    _save(tmp / "by_id.npy", np.argsort(ids, kind="stable").astype(np.int64))
    newest = np.lexsort((ids, created))[::-1].astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    _save(tmp / "newest.npy", newest)
    write_atomic(tmp / "vocab.json", json.dumps(vocab).encode())
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


# -- the store ---------------------------------------------------------------------------------
def _empty_meta() -> dict[str, Any]:
    return {"format": FORMAT, "generation": None, "base": None, "next_base": 1, "next_seq": 0, "delta": [],
            "removed": []}


_VIEWS: dict[Path, tuple[bytes, SummaryView]] = {}  # directory -> (summary.json's bytes, its view)


class Summary:
    """The summary directory of one dock. Writers and readers hold the dock lock."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.meta = self._read_meta()
        self._view: SummaryView | None = None

    def _read_meta(self) -> dict[str, Any]:
        self._raw = b""
        try:
            self._raw = (self.directory / META).read_bytes()
            data = json.loads(self._raw)
        except FileNotFoundError:
            return _empty_meta()
        except (OSError, ValueError) as exc:
            logger.warning("summary unreadable (%s); it will be rebuilt", exc)
            return _empty_meta()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return _empty_meta()
        return data

    @property
    def generation(self) -> int | None:
        return self.meta.get("generation")

    def view(self) -> SummaryView:
        """The columns of this state. A process keeps the last view of each summary and reuses it
        while ``summary.json`` is byte for byte the same (bases are immutable and never renamed
        to an old name, and a mapped file outlives its unlinking), so a warm ``list`` maps nothing."""
        if self._view is None:
            cached = _VIEWS.get(self.directory)
            if cached is not None and self._raw and cached[0] == self._raw:
                self._view = cached[1]
            else:
                base = self.directory / self.meta["base"] if self.meta.get("base") else None
                self._view = SummaryView(base, self.meta)
                if self._raw:
                    _VIEWS[self.directory] = (self._raw, self._view)
        return self._view

    # -- changes (under the dock lock) -------------------------------------------------------
    def apply(self, added: Sequence[Entry], removed: Iterable[str], generation: int | None) -> None:
        """Remove ``removed`` ids, add ``added`` entries (an id in both keeps its place)."""
        meta = json.loads(json.dumps(self.meta))
        removed = set(removed) | {e.id for e in added}  # an added id that is there already is replaced
        seqs: dict[str, int] = {}
        if removed:
            seqs = {r["id"]: r["seq"] for r in meta["delta"] if r["id"] in removed}
            meta["delta"] = [r for r in meta["delta"] if r["id"] not in removed]
            base_rows = self.view().base_rows_of(removed - set(seqs))
            seqs.update(base_rows)
            meta["removed"] = sorted(set(meta["removed"]) | set(base_rows))
        for entry in added:
            seq = seqs.get(entry.id)
            if seq is None:
                seq = meta["next_seq"]
                meta["next_seq"] = seq + 1
            meta["delta"].append(row_of(entry, seq))
        meta["generation"] = generation
        if len(meta["delta"]) + len(meta["removed"]) > delta_limit(self.view().n_base):
            self._write_base(meta, self.view().live_rows(meta["removed"], meta["delta"]))
        self._commit(meta)

    def rebuild(self, entries: Sequence[Entry], generation: int | None) -> None:
        """A new summary of ``entries`` in the order given (``Index.all()``'s)."""
        meta = _empty_meta()
        meta["next_base"] = self.meta.get("next_base", 1)
        rows = [row_of(e, i) for i, e in enumerate(entries)]
        meta["next_seq"] = len(rows)
        meta["generation"] = generation
        self._write_base(meta, rows)
        self._commit(meta)

    def _write_base(self, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        name = f"base-{int(meta['next_base']):06d}"
        meta["next_base"] = int(meta["next_base"]) + 1
        self.directory.mkdir(parents=True, exist_ok=True)
        write_base(self.directory / name, rows)
        meta.update(base=name, delta=[], removed=[])

    def _commit(self, meta: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._raw = json.dumps(meta, separators=(",", ":")).encode()
        write_atomic(self.directory / META, self._raw)
        self.meta = meta
        self._view = None
        _VIEWS.pop(self.directory, None)
        for path in self.directory.iterdir():  # what the new meta does not name (readers hold the lock)
            if path.name not in (META, meta.get("base")):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def problems(self, entries: Sequence[Entry], generation: int) -> list[str]:
        """What keeps the summary from matching ``entries`` (the index) field by field (doctor)."""
        if self.generation != generation:
            return [f"summary generation {self.generation} differs from the index's {generation}"]
        try:
            have = {r["id"]: r for r in self.view().live_rows(self.meta["removed"])}
        except (OSError, ValueError, KeyError) as exc:
            return [f"summary unreadable ({exc})"]
        want = {e.id: row_of(e, 0) for e in entries}
        if have.keys() != want.keys():
            return [f"summary holds {len(have.keys() - want.keys())} learnwares the index does not "
                    f"and misses {len(want.keys() - have.keys())}"]
        differ = [i for i, w in want.items() if {**have[i], "seq": 0} != w]
        return [f"summary fields of {len(differ)} learnwares differ from the index (first {differ[0][:12]})"] if differ else []


# -- reading -------------------------------------------------------------------------------------
_COLUMNS = ("ids", "key", "created", "status", *CLASS_COLUMNS, "scen_off", "scen", "dim", "kinds", "text_off",
            "shown_off", "by_id", "newest")


class SummaryView:
    """One state of the summary as columns over positions ``0..size-1``: the base's rows, then the
    delta's. ``live`` marks the rows that count (base rows removed since are dead)."""

    def __init__(self, base: Path | None, meta: Mapping[str, Any]) -> None:
        self.base = base
        self.generation = meta.get("generation")
        self.delta = list(meta.get("delta") or ())
        self.vocab: dict[str, list[str]] = json.loads((base / "vocab.json").read_text()) if base else {}
        # every file is opened now, under the dock lock: a later writer may replace the base, and
        # an open or mapped file outlives its unlinking
        self._cols: dict[str, np.ndarray] = {}
        if base is not None:
            for name in _COLUMNS:
                # a plain view of the map: np.memmap's __getitem__ costs microseconds per element read
                self._cols[name] = np.load(base / f"{name}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray)
        self._text = self._bytes("text.bin") if base else b""
        self._shown_data = self._bytes("shown.bin") if base else b""
        n_base = self._arr("ids").shape[0] if base else 0
        self.n_base = n_base
        self.n_rows = n_base + len(self.delta)
        self.live = np.ones(self.n_rows, dtype=bool)
        removed = meta.get("removed") or ()
        if removed and n_base:
            self.live[self._positions_of_ids(list(removed))] = False
        self._delta_text = b"".join((str(r.get(f) or "").lower().encode("utf-8", "surrogatepass") + b"\0")
                                    for r in self.delta for f in TEXT_FIELDS)
        lens = [len(str(r.get(f) or "").lower().encode("utf-8", "surrogatepass")) + 1
                for r in self.delta for f in TEXT_FIELDS]
        self._delta_off = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.int64)

    # -- raw columns -----------------------------------------------------------------------------
    def _arr(self, name: str) -> np.ndarray:
        return self._cols[name]

    def _bytes(self, name: str) -> mmap.mmap | bytes:
        assert self.base is not None
        with open(self.base / name, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return b""
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def _text_base(self) -> mmap.mmap | bytes:
        return self._text

    def _search_sorted_ids(self, want: np.ndarray) -> np.ndarray:
        """``np.searchsorted(ids[by_id], want)`` without building ``ids[by_id]`` (64 bytes per row,
        per call: 64 MB at 1,000,000 for a search's few ids): all of ``want`` binary-searched at
        once through the ``by_id`` order, log2(rows) rounds of len(want) comparisons."""
        ids, by_id = self._arr("ids"), self._arr("by_id")
        lo = np.zeros(want.size, dtype=np.int64)
        hi = np.full(want.size, self.n_base, dtype=np.int64)
        while True:
            open_ = np.nonzero(lo < hi)[0]
            if open_.size == 0:
                return lo
            mid = (lo[open_] + hi[open_]) // 2
            below = ids[by_id[mid]] < want[open_]
            lo[open_[below]] = mid[below] + 1
            hi[open_[~below]] = mid[~below]

    def _positions_of_ids(self, ids: list[str]) -> np.ndarray:
        """Base positions of ``ids`` that are in the base."""
        if not self.n_base or not ids:
            return np.zeros(0, dtype=np.int64)
        base_ids, by_id = self._arr("ids"), self._arr("by_id")
        want = np.array([i.encode() for i in ids], dtype="S64")
        at = np.minimum(self._search_sorted_ids(want), self.n_base - 1)
        found = by_id[at]
        return np.asarray(found[base_ids[found] == want], dtype=np.int64)

    def base_rows_of(self, ids: set[str]) -> dict[str, int]:
        """id -> sequence number of those of ``ids`` that are live base rows."""
        pos = self._positions_of_ids(sorted(ids))
        pos = pos[self.live[pos]]
        keys = self._arr("key")[pos] if pos.size else np.zeros(0, dtype=np.int64)
        return {self._arr("ids")[p].decode(): int(k & ((1 << _SHARD_SHIFT) - 1)) for p, k in zip(pos, keys)}

    def live_rows(self, removed: Iterable[str] = (), delta: Iterable[Mapping[str, Any]] | None = None
                  ) -> list[dict[str, Any]]:
        """The base's rows less ``removed`` ids, then ``delta`` (default: this view's); O(size)."""
        gone = set(removed)
        out = [r for r in (self.row(p) for p in range(self.n_base)) if r["id"] not in gone]
        return out + [dict(r) for r in (self.delta if delta is None else delta)]

    # -- one row ----------------------------------------------------------------------------------
    def row(self, pos: int) -> dict[str, Any]:
        """The summary's fields of the row at ``pos`` (as :func:`row_of` made them)."""
        if pos >= self.n_base:
            return dict(self.delta[pos - self.n_base])
        a = self._arr
        voc = self.vocab
        key = int(a("key")[pos])
        so, sc = a("scen_off"), a("scen")
        kinds = int(a("kinds")[pos])
        shown = self._shown(pos)
        text = self.texts([pos], ("description",))[0]
        return {
            "id": a("ids")[pos].decode(), "seq": key & ((1 << _SHARD_SHIFT) - 1),
            "created": a("created")[pos].decode(), "status": voc["status"][int(a("status")[pos])],
            "alias": shown[1] or None,
            **{c: (voc[c][int(a(c)[pos])] if int(a(c)[pos]) >= 0 else None) for c in CLASS_COLUMNS},
            "scenarios": [voc["scenario"][int(c)] for c in sc[int(so[pos]):int(so[pos + 1])]],
            "dim": int(a("dim")[pos]) if int(a("dim")[pos]) >= 0 else None,
            "kinds": [k for i, k in enumerate(voc["kinds"]) if kinds >> i & 1], "name": shown[0],
            "description": text[0] if text else "",
        }  # fmt: skip

    def _shown(self, pos: int) -> tuple[str, str]:
        off = self._arr("shown_off")
        data = self._shown_data
        a, b, c = int(off[2 * pos]), int(off[2 * pos + 1]), int(off[2 * pos + 2])
        return data[a:b - 1].decode("utf-8", "surrogatepass"), data[b:c - 1].decode("utf-8", "surrogatepass")

    def id_of(self, pos: int) -> str:
        return self._arr("ids")[pos].decode() if pos < self.n_base else self.delta[pos - self.n_base]["id"]

    def brief(self, pos: int) -> Entry:
        return brief_entry(self.row(pos))

    # -- columns over every position ---------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """A code column (status, data_type, task, library, license, dim, kinds) for every position;
        delta values get codes past the base's vocabulary (:meth:`vocabulary`)."""
        cached = self._cols.get(f"all:{name}")
        if cached is not None:
            return cached
        base = np.asarray(self._arr(name)) if self.n_base else np.zeros(0, dtype=np.int32)
        if name == "dim":
            extra = [-1 if r.get("dim") is None else int(r["dim"]) for r in self.delta]
        elif name == "kinds":
            vocab = self.vocabulary("kinds")
            extra = [sum(1 << vocab.index(k) for k in r.get("kinds") or ()) for r in self.delta]
        else:
            vocab = self.vocabulary(name)
            extra = [-1 if r.get(name) is None else vocab.index(r.get(name) if name != "status" else r.get("status")
                                                                  or "") for r in self.delta]
        out = np.concatenate([base.astype(np.int64), np.array(extra, dtype=np.int64)])
        self._cols[f"all:{name}"] = out
        return out

    def vocabulary(self, name: str) -> list[str]:
        """The values behind the codes of ``name``: the base's, then new ones of the delta."""
        key = f"vocab:{name}"
        if key in self.__dict__:
            return self.__dict__[key]
        vocab = list(self.vocab.get(name, []))
        seen = set(vocab)
        for r in self.delta:
            if name == "scenario":
                values = list(r.get("scenarios") or ())
            elif name == "kinds":
                values = list(r.get("kinds") or ())
            elif name == "status":
                values = [r.get("status") or ""]
            else:
                values = [r.get(name)] if r.get(name) is not None else []
            for v in values:
                if v not in seen:
                    seen.add(v)
                    vocab.append(v)
        self.__dict__[key] = vocab
        return vocab

    def codes_where(self, name: str, keep: Any) -> np.ndarray:
        """Codes of ``name`` whose value ``keep(value)`` accepts."""
        return np.array([i for i, v in enumerate(self.vocabulary(name)) if keep(v)], dtype=np.int64)

    def tag_rows(self, codes: np.ndarray) -> np.ndarray:
        """Positions with at least one Scenario among ``codes`` (unsorted, maybe repeated)."""
        hits = []
        if self.n_base and codes.size:
            off, tags = self._arr("scen_off"), np.asarray(self._arr("scen"))
            at = np.nonzero(_code_mask(codes, tags)[tags])[0]
            hits.append(np.searchsorted(off, at, side="right") - 1)
        vocab = self.vocabulary("scenario")
        wanted = {vocab[int(c)] for c in codes}
        hits.append(np.array([self.n_base + i for i, r in enumerate(self.delta)
                              if wanted & set(r.get("scenarios") or ())], dtype=np.int64))
        return np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64)

    def substring_rows(self, needle: str, fields: Sequence[str]) -> np.ndarray:
        """Positions with a lowercased field of ``fields`` containing ``needle`` (lowercased)."""
        pat = needle.encode("utf-8", "surrogatepass")
        wanted = {TEXT_FIELDS.index(f) for f in fields}
        out = []
        for data, off, first in ((self._text_base(), self._arr("text_off") if self.n_base else None, 0),
                                 (self._delta_text, self._delta_off, self.n_base)):
            if off is None or not len(data):
                continue
            out.append(first + _find_rows(data, np.asarray(off), pat, wanted))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def alias_rows(self, alias: str) -> np.ndarray:
        """Positions whose lowercased alias equals ``alias``."""
        pat = alias.encode("utf-8", "surrogatepass")
        out = [np.zeros(0, dtype=np.int64)]
        if self.n_base and len(self._text):
            out.append(_equal_rows(self._text, np.asarray(self._arr("text_off")), pat, TEXT_FIELDS.index("alias")))
        out.append(np.array([self.n_base + i for i, r in enumerate(self.delta) if (r.get("alias") or "").lower()
                             == alias], dtype=np.int64))
        return np.concatenate(out)

    def texts(self, positions: Iterable[int], fields: Sequence[str]) -> list[list[str]]:
        """The lowercased, non-empty texts of ``fields`` of each position."""
        idx = [TEXT_FIELDS.index(f) for f in fields]
        base_off = self._arr("text_off") if self.n_base else None
        base = self._text_base()
        out = []
        for p in positions:
            if p < self.n_base:
                data, off, row = base, base_off, p
            else:
                data, off, row = self._delta_text, self._delta_off, p - self.n_base
            texts = []
            for f in idx:
                a, b = int(off[3 * row + f]), int(off[3 * row + f + 1]) - 1
                if b > a:
                    texts.append(data[a:b].decode("utf-8", "surrogatepass"))
            out.append(texts)
        return out

    def ids_with_prefix(self, prefix: str) -> np.ndarray:
        """Positions whose id starts with ``prefix`` (any text; ids are lowercase hex)."""
        pat = prefix.encode("utf-8", "surrogatepass")
        out = []
        if self.n_base:
            ids, by_id = self._arr("ids"), self._arr("by_id")
            ends = [pat[:64]] if len(pat) >= 64 else [pat, pat + b"\xff"]
            at = self._search_sorted_ids(np.array(ends, dtype="S64"))
            lo, hi = int(at[0]), (int(at[1]) if len(ends) == 2 else int(at[0]) + 1)
            cand = np.asarray(by_id[lo:hi], dtype=np.int64)
            out.append(cand[np.array([bytes(ids[c]).startswith(pat) for c in cand], dtype=bool)]
                       if cand.size else cand)
        out.append(np.array([self.n_base + i for i, r in enumerate(self.delta) if r["id"].startswith(prefix)],
                            dtype=np.int64))
        return np.concatenate(out)

    # -- the semantic filter's RowSource (lwdock.search.semantic); a selection is an array of
    # positions, in index order
    def start(self) -> np.ndarray:
        return self.all_positions()

    def size(self, sel: np.ndarray) -> int:
        return int(sel.size)

    def status_counts(self) -> dict[str, int]:
        codes = self.column("status")[self.live]
        counts = np.bincount(codes, minlength=len(self.vocabulary("status"))) if codes.size else []
        return {v: int(n) for v, n in zip(self.vocabulary("status"), counts) if n}

    def keep_status(self, sel: np.ndarray, allowed: set[str]) -> np.ndarray:
        return self._keep_codes(sel, "status", lambda v: v in allowed)

    def keep_class(self, sel: np.ndarray, key: str, wanted: set[str]) -> np.ndarray:
        return self._keep_codes(sel, KEY_COLUMNS[key], lambda v: v.lower() in wanted)

    def _keep_codes(self, sel: np.ndarray, name: str, keep: Any) -> np.ndarray:
        col = self.column(name)[sel]
        return sel[_code_mask(self.codes_where(name, keep), col)[col]]

    def keep_tags(self, sel: np.ndarray, key: str, wanted: set[str]) -> np.ndarray:
        return self._keep_rows(sel, self.tag_rows(self.codes_where("scenario", lambda v: v.lower() in wanted)))

    def _keep_rows(self, sel: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The positions of ``sel`` that are in ``rows`` (a mask over every position: O(N) with a
        small constant, where ``np.isin`` hashes or sorts)."""
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        return sel[mask[sel]]

    def keep_substring(self, sel: np.ndarray, needle: str, fields: tuple[str, ...]) -> np.ndarray:
        if "\0" in needle:  # cannot be in a stored field
            return sel[:0]
        return self._keep_rows(sel, self.substring_rows(needle, fields))

    def keep_ids(self, sel: np.ndarray, refs: list[str]) -> np.ndarray:
        hits = [self.ids_with_prefix(r) for r in refs] + [self.alias_rows(r) for r in refs if "\0" not in r]
        return self._keep_rows(sel, np.concatenate(hits)) if hits else sel[:0]

    def take(self, sel: np.ndarray, order: list[int]) -> np.ndarray:
        return sel[np.asarray(order, dtype=np.int64)]

    # what search reads of the rows it kept
    def entries(self, sel: Iterable[int]) -> list[Entry]:
        """Brief entries (:func:`brief_entry`) of the rows of ``sel``."""
        return [self.brief(int(p)) for p in sel]

    def ids(self, sel: Iterable[int]) -> list[str]:
        return self.id_array(np.asarray(sel if isinstance(sel, np.ndarray) else list(sel))).astype("U64").tolist()

    def id_array(self, sel: np.ndarray) -> np.ndarray:
        """The ids of the rows of ``sel``, in its order, as a bytes array (vectorised: no str per row)."""
        sel = np.asarray(sel, dtype=np.int64)
        out = np.empty(sel.size, dtype="S64")
        in_base = sel < self.n_base
        if in_base.any():
            out[in_base] = self._arr("ids")[sel[in_base]]
        if not in_base.all():
            out[~in_base] = [self.delta[int(p) - self.n_base]["id"].encode() for p in sel[~in_base]]
        return out

    def entries_by_id(self, ids: Iterable[str]) -> dict[str, Entry]:
        wanted = list(dict.fromkeys(ids))
        pos = self._positions_of_ids(wanted)
        out = {self.id_of(int(p)): self.brief(int(p)) for p in pos if self.live[p]}
        out.update({r["id"]: brief_entry(r) for r in self.delta if r["id"] in set(wanted)})
        return out

    def count_kind(self, sel: np.ndarray, kind: str) -> int:
        """Rows of ``sel`` that are not invalid and have a spec of ``kind``."""
        vocab = self.vocabulary("kinds")
        if kind not in vocab:
            return 0
        bit = 1 << vocab.index(kind)
        invalid = self.codes_where("status", lambda v: v == "invalid")
        rows = sel[~np.isin(self.column("status")[sel], invalid)]
        return int(np.count_nonzero(self.column("kinds")[rows] & bit))

    def index_order(self, positions: np.ndarray) -> np.ndarray:
        """``positions`` sorted into index order."""
        keys = np.empty(positions.size, dtype=np.int64)
        base = positions < self.n_base
        if base.any():
            keys[base] = self._arr("key")[positions[base]]
        for j in np.nonzero(~base)[0]:
            r = self.delta[int(positions[j]) - self.n_base]
            keys[j] = order_key(r["id"], r["seq"])
        return positions[np.argsort(keys, kind="stable")]

    def all_positions(self) -> np.ndarray:
        """Every live position, in index order."""
        base = np.nonzero(self.live[: self.n_base])[0]
        if not self.delta:
            return base
        return self.index_order(np.concatenate([base, np.arange(self.n_base, self.n_rows)]))

    def newest(self, sel: np.ndarray, limit: int | None) -> list[int]:
        """The positions of ``sel`` by (created, id), newest first (the first ``limit``)."""
        selected = np.zeros(self.n_rows, dtype=bool)
        selected[sel] = True
        base_mask = selected[: self.n_base]
        order = self._arr("newest") if self.n_base else np.zeros(0, dtype=np.int64)
        if limit is not None and self.n_base:
            picked: list[int] = []
            step = max(4 * limit, 1024)
            for start in range(0, order.size, step):  # newest first: usually one chunk
                chunk = np.asarray(order[start:start + step])
                picked.extend(int(p) for p in chunk[base_mask[chunk]])
                if len(picked) >= limit:
                    break
            base_pos = picked[:limit]
        else:
            base_pos = [int(p) for p in np.asarray(order)[base_mask[np.asarray(order)]]] if self.n_base else []
        created = self._arr("created") if self.n_base else None
        ids = self._arr("ids") if self.n_base else None
        merged = [((bytes(created[p]), bytes(ids[p])), p) for p in base_pos] if self.n_base else []
        merged += [(((r.get("created") or "").encode(), r["id"].encode()), self.n_base + i)
                   for i, r in enumerate(self.delta) if selected[self.n_base + i]]
        merged.sort(key=lambda kv: kv[0], reverse=True)
        out = [p for _, p in merged]
        return out if limit is None else out[:limit]


def _code_mask(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A lookup table: ``mask[v]`` is True when code ``v`` is among ``codes`` (-1, "no value", never
    is: it indexes the table's last slot, which stays False)."""
    size = int(max(int(values.max()) if values.size else 0, int(codes.max()) if codes.size else 0)) + 2
    mask = np.zeros(size, dtype=bool)
    mask[np.asarray(codes, dtype=np.int64)] = True
    return mask


def _find_rows(data: Any, off: np.ndarray, pat: bytes, fields: set[int]) -> np.ndarray:
    """Rows (field // 3) of the NUL-ended fields in ``data`` that contain ``pat`` and whose field
    number (field % 3) is in ``fields``. The search runs in C (``find``) and jumps past each field
    it has decided, or past the row once it matched and every field counts."""
    rows = []
    pos = data.find(pat, 0)
    every = len(fields) == 3
    n_fields = off.size - 1
    while pos != -1:
        f = int(np.searchsorted(off, pos, side="right")) - 1
        if f >= n_fields:
            break
        if f % 3 in fields:
            rows.append(f // 3)
            nxt = int(off[min(n_fields, (f // 3 + 1) * 3)]) if every else int(off[f + 1])
        else:
            nxt = int(off[f + 1])
        pos = data.find(pat, nxt)
    return np.array(rows, dtype=np.int64)


def _equal_rows(data: Any, off: np.ndarray, pat: bytes, field: int) -> np.ndarray:
    """Rows whose field number ``field`` (> 0: it follows another field's NUL) equals ``pat``."""
    wrapped = b"\0" + pat + b"\0"
    rows = []
    pos = data.find(wrapped)
    while pos != -1:
        f = int(np.searchsorted(off, pos + 1, side="right")) - 1
        if f % 3 == field:
            rows.append(f // 3)
        pos = data.find(wrapped, pos + 1)
    return np.array(rows, dtype=np.int64)


# -- keeping it in step with a dock (wired in lwdock/api.py) --------------------------------------
class _DockLike(Protocol):
    layout: Any

    def lock(self) -> AbstractContextManager[None]: ...

    def generation(self) -> int: ...

    def entries(self) -> list[Entry]: ...


def open_summary(dock: _DockLike) -> Summary:
    return Summary(dock.layout.summary)


def on_change(dock: _DockLike, event: DockChanged) -> None:
    """The Dock's change listener (inside its lock, before the index session is written). The
    summary records the event's generation only when it was current before; otherwise it records
    "unknown" and the next reader rebuilds it. A summary that cannot be written is logged: the
    next reader rebuilds it too."""
    try:
        summary = open_summary(dock)
        before = summary.generation
        if before is None and not summary.meta.get("base") and not summary.meta["delta"]:
            before = event.generation - 1  # a fresh dock: nothing to have missed
        current = before in (event.generation - 1, event.generation)
        summary.apply(list(event.added), event.removed, event.generation if current else None)
    except (OSError, ValueError) as exc:
        logger.warning("summary update failed (%s); the next list or search rebuilds it", exc)


def current(dock: _DockLike, generation: int | None = None) -> SummaryView:
    """The summary of ``dock``'s index (call under the dock lock), rebuilt first when it is not
    at the index's generation (``generation``: read by the caller under the same hold of the
    lock, else read here): a stale summary is never read."""
    summary = open_summary(dock)
    generation = dock.generation() if generation is None else generation
    if summary.generation != generation:
        if summary.generation is not None or summary.meta.get("base"):
            logger.warning("summary was out of date (generation %s, index %s); rebuilding it",
                           summary.generation, generation)
        summary.rebuild(dock.entries(), generation)
    try:
        return summary.view()
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("summary damaged (%s); rebuilding it", exc)
        summary.rebuild(dock.entries(), generation)
        return summary.view()


def problems(dock: _DockLike) -> list[str]:
    with dock.lock():
        return open_summary(dock).problems(dock.entries(), dock.generation())


def rebuild(dock: _DockLike) -> int:
    with dock.lock():
        entries = dock.entries()
        open_summary(dock).rebuild(entries, dock.generation())
        return len(entries)
