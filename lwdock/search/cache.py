"""The search cache: everything statistical search needs per learnware, memory-mapped.

Layout, beside the index (``<dock>/search/``)::

    manifest.json                  generation, dtype, groups -> segments + removed ids
    <group>/rff.npy                RFF frequencies of the group (prefilter)
    <group>/seg-000001/            one immutable segment
        z.npy (M, d)  beta.npy (M,)  offsets.npy (N+1,)  self.npy (N,)  sketch.npy (N, 2m)  ids.npy (N,)

A *group* holds the learnwares whose table specs share dimension and gamma (only those can be
compared). Each submit writes a new small segment; each remove records the id in ``removed``;
once a group has more than :data:`MAX_SEGMENTS` segments or a quarter of its rows removed, its
live rows are merged into one segment (compaction). Segments are written under a temporary name
and renamed; ``manifest.json`` is replaced atomically last, so a crash leaves the old manifest,
whose ``generation`` then lags the index's and is caught up on the next search
(:func:`ensure_current`). All writes happen under the dock lock.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomic
from . import bulk, prefilter

logger = logging.getLogger("lwdock")

FORMAT = 1
MAX_SEGMENTS = 8
TABLE_TYPE = "RKMETableSpecification"
DEFAULT_DTYPE = "float32"


def group_key(dim: int, gamma: float) -> str:
    return f"table-d{int(dim)}-g{float(gamma)!r}"


# -- one learnware's arrays -------------------------------------------------------------------
@dataclass
class Item:
    id: str
    z: np.ndarray  # (K, d) float64
    beta: np.ndarray  # (K,)
    gamma: float

    @property
    def key(self) -> str:
        return group_key(self.z.shape[1], self.gamma)


def read_spec_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, float, str]:
    """(z, beta, gamma, type) of a table spec file, via the spec package's loader."""
    from ..spec.specfile import load_spec

    spec = load_spec(path)
    z = np.asarray(spec.z_, dtype=np.float64)
    z = z.reshape(z.shape[0], -1)
    return z, np.asarray(spec.beta_, dtype=np.float64).ravel(), float(spec.gamma), str(spec.type)


def entry_dicts(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """house branch: the Dock returns lwdock.records.Entry; this code still reads index dicts.
    (The search half converts to Entry in one adapter instead; drop this on merge.) The records'
    own documents, read-only, not copies: 100,000 new objects would wake the cyclic GC."""
    return [e._doc if hasattr(e, "to_dict") else e for e in entries]


def eligible(entry: dict[str, Any]) -> bool:
    """Entries that take part in statistical search: not invalid, with a table spec."""
    if hasattr(entry, "specs"):  # house branch shim: an lwdock.records.Entry
        return entry.status != "invalid" and any(s.kind == "table" for s in entry.specs)
    return entry.get("status") != "invalid" and any(s.get("kind") == "table" for s in entry.get("specs") or [])


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Segment:
    name: str
    z: np.ndarray
    beta: np.ndarray
    offsets: np.ndarray
    self_: np.ndarray
    sketch: np.ndarray
    ids: np.ndarray  # bytes
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    _norms: np.ndarray | None = None

    @classmethod
    def load(cls, path: Path) -> Segment:
        def arr(n: str, mmap: bool = False) -> np.ndarray:
            return np.load(path / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

        return cls(path.name, arr("z", True), arr("beta", True), arr("offsets"), arr("self"), arr("sketch", True), arr("ids"))

    @property
    def sketch_norms(self) -> np.ndarray:
        if self._norms is None:
            sk = np.asarray(self.sketch, dtype=np.float32)
            self._norms = np.einsum("ij,ij->i", sk, sk)
        return self._norms

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.asarray(self.z[s:e], dtype=np.float64), np.asarray(self.beta[s:e], dtype=np.float64)


@dataclass
class Group:
    key: str
    dim: int
    gamma: float
    rff: np.ndarray
    segments: list[Segment]
    removed: set[str]

    @property
    def size(self) -> int:
        return int(sum(int(s.live.sum()) for s in self.segments))

    def live_ids(self) -> list[str]:
        return [i.decode() for s in self.segments for i in s.ids[s.live]]


class SearchCache:
    """A read view of one manifest; :meth:`apply` writes a new one."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.manifest = self._read_manifest()
        self._groups: dict[str, Group] = {}

    def _read_manifest(self) -> dict[str, Any]:
        path = self.directory / "manifest.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {"format": FORMAT, "generation": None, "dtype": None, "groups": {}, "next_segment": 1, "unreadable": []}
        except (OSError, ValueError) as exc:
            logger.warning("search cache manifest unreadable (%s); it will be rebuilt", exc)
            return {"format": FORMAT, "generation": None, "dtype": None, "groups": {}, "next_segment": 1, "unreadable": []}
        return data

    @property
    def generation(self) -> int | None:
        return self.manifest.get("generation")

    @property
    def dtype(self) -> str:
        return self.manifest.get("dtype") or DEFAULT_DTYPE

    def keys(self) -> list[str]:
        return list(self.manifest["groups"])

    def group(self, key: str) -> Group | None:
        meta = self.manifest["groups"].get(key)
        if meta is None:
            return None
        if key not in self._groups:
            gdir = self.directory / key
            segs = [Segment.load(gdir / name) for name in meta["segments"]]
            removed = set(meta.get("removed", []))
            rm = np.array(sorted(removed), dtype=bytes) if removed else np.zeros(0, dtype=bytes)
            for s in segs:
                s.live = ~np.isin(s.ids, rm) if rm.size else np.ones(s.ids.size, bool)
            rff = np.load(gdir / "rff.npy", allow_pickle=False)
            self._groups[key] = Group(key, int(meta["dim"]), float(meta["gamma"]), rff, segs, removed)
        return self._groups[key]

    def groups_meta(self) -> dict[str, dict[str, Any]]:
        return self.manifest["groups"]

    def live_ids(self) -> set[str]:
        out: set[str] = set()
        for key in self.keys():
            g = self.group(key)
            assert g is not None
            out.update(g.live_ids())
        return out | set(self.manifest.get("unreadable", []))

    # -- writing (caller holds the dock lock) -------------------------------------------------
    def apply(self, added: Iterable[Item], removed: Iterable[str], generation: int | None, unreadable: Iterable[str] = ()) -> None:
        manifest = json.loads(json.dumps(self.manifest))
        if manifest.get("dtype") is None:
            manifest["dtype"] = self.dtype
        removed = set(removed)
        manifest["unreadable"] = sorted((set(manifest.get("unreadable", [])) - removed) | set(unreadable))
        by_key: dict[str, list[Item]] = {}
        for item in added:
            by_key.setdefault(item.key, []).append(item)
        if removed:
            for key, meta in manifest["groups"].items():
                g = self.group(key)
                assert g is not None
                present = {i for s in g.segments for i in (x.decode() for x in s.ids)}
                hit = removed & present
                if hit:
                    meta["removed"] = sorted(set(meta.get("removed", [])) | hit)
        for key, items in by_key.items():
            meta = manifest["groups"].setdefault(
                key, {"type": TABLE_TYPE, "dim": items[0].z.shape[1], "gamma": items[0].gamma, "segments": [], "removed": []}
            )
            gdir = self.directory / key
            gdir.mkdir(parents=True, exist_ok=True)
            if not (gdir / "rff.npy").exists():
                _save(gdir / "rff.npy", prefilter.frequencies(meta["dim"], meta["gamma"]))
            rff = np.load(gdir / "rff.npy", allow_pickle=False)
            name = _next_segment(manifest)
            _write_segment(gdir, name, items, rff, manifest["dtype"])
            meta["segments"].append(name)
            new_ids = {i.id for i in items}
            old = self.group(key)
            present = set() if old is None else {x.decode() for s in old.segments for x in s.ids}
            if new_ids & present:
                # re-added after a remove: compaction keeps the newest copy only
                meta["_force_compact"] = True
            meta["removed"] = sorted(set(meta.get("removed", [])) - new_ids)
        for key, meta in manifest["groups"].items():
            self._maybe_compact(manifest, key, meta)
        manifest["groups"] = {k: m for k, m in manifest["groups"].items() if m["segments"]}
        manifest["generation"] = generation
        self._commit(manifest)

    def _maybe_compact(self, manifest: dict[str, Any], key: str, meta: dict[str, Any]) -> None:
        force = meta.pop("_force_compact", False)
        removed = set(meta.get("removed", []))
        if not force and len(meta["segments"]) <= MAX_SEGMENTS and not removed:
            return
        gdir = self.directory / key
        segs = [Segment.load(gdir / n) for n in meta["segments"]]
        total = sum(s.ids.size for s in segs)
        if not force and len(meta["segments"]) <= MAX_SEGMENTS and len(removed) * 4 < total:
            return
        # newest copy of each id wins; removed ids are dropped
        seen: set[str] = set()
        items: list[Item] = []
        for s in reversed(segs):
            for i, raw in enumerate(s.ids):
                sid = raw.decode()
                if sid in removed or sid in seen:
                    continue
                seen.add(sid)
                z, b = s.rows(i)
                items.append(Item(sid, z, b, float(meta["gamma"])))
        items.reverse()
        meta["removed"] = []
        if not items:
            meta["segments"] = []
            return
        name = _next_segment(manifest)
        _write_segment(gdir, name, items, np.load(gdir / "rff.npy", allow_pickle=False), manifest["dtype"])
        meta["segments"] = [name]

    def _commit(self, manifest: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / "manifest.json", json.dumps(manifest, indent=1).encode())
        self.manifest = manifest
        self._groups.clear()
        collect_garbage(self.directory, manifest)


def _next_segment(manifest: dict[str, Any]) -> str:
    n = int(manifest.get("next_segment", 1))
    manifest["next_segment"] = n + 1
    return f"seg-{n:06d}"


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def write_arrays(
    gdir: Path, name: str, ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, gamma: float, rff: np.ndarray, dtype: str
) -> None:
    """Write one segment from stacked arrays (also the benchmark's bulk-load path)."""
    tmp = gdir / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    offsets = np.asarray(offsets, dtype=np.int64)
    _save(tmp / "z.npy", np.ascontiguousarray(z, dtype=dtype))
    _save(tmp / "beta.npy", np.asarray(beta, dtype=dtype))
    _save(tmp / "offsets.npy", offsets)
    # self products from the full-precision input, sketches likewise
    _save(tmp / "self.npy", bulk.self_products(z, beta, offsets, gamma))
    _save(tmp / "sketch.npy", prefilter.sketches(z, beta, offsets, rff))
    _save(tmp / "ids.npy", np.array([i.encode() for i in ids], dtype=bytes))
    os.replace(tmp, gdir / name)


def _write_segment(gdir: Path, name: str, items: list[Item], rff: np.ndarray, dtype: str) -> None:
    offsets = np.concatenate([[0], np.cumsum([it.beta.size for it in items])])
    z = np.concatenate([it.z for it in items])
    beta = np.concatenate([it.beta for it in items])
    write_arrays(gdir, name, [it.id for it in items], z, beta, offsets, items[0].gamma, rff, dtype)


def collect_garbage(directory: Path, manifest: dict[str, Any]) -> None:
    """Remove segment folders the manifest does not name (left by a crash or a compaction)."""
    for gdir in directory.iterdir() if directory.exists() else ():
        if not gdir.is_dir():
            continue
        meta = manifest["groups"].get(gdir.name)
        if meta is None:
            shutil.rmtree(gdir, ignore_errors=True)
            continue
        keep = set(meta["segments"])
        for seg in gdir.iterdir():
            if seg.is_dir() and seg.name not in keep:
                shutil.rmtree(seg, ignore_errors=True)


def bulk_load(
    directory: str | os.PathLike[str], ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, gamma: float,
    dtype: str = DEFAULT_DTYPE, generation: int | None = 0,
) -> SearchCache:
    """Create a cache with one group from stacked arrays, without a dock (benchmarks, tests)."""
    directory = Path(directory)
    key = group_key(z.shape[1], gamma)
    gdir = directory / key
    gdir.mkdir(parents=True, exist_ok=True)
    rff = prefilter.frequencies(z.shape[1], gamma)
    _save(gdir / "rff.npy", rff)
    write_arrays(gdir, "seg-000001", ids, z, beta, offsets, gamma, rff, dtype)
    manifest = {
        "format": FORMAT, "generation": generation, "dtype": dtype, "next_segment": 2, "unreadable": [],
        "groups": {key: {"type": TABLE_TYPE, "dim": int(z.shape[1]), "gamma": float(gamma), "segments": ["seg-000001"], "removed": []}},
    }
    cache = SearchCache(directory)
    cache._commit(manifest)
    return cache


# -- the Dock's hooks (called inside the dock lock) -----------------------------------------
def cache_dir(dock: Any) -> Path:
    layout = getattr(dock, "layout", None)
    return Path(layout.search) if layout is not None and hasattr(layout, "search") else Path(dock.path) / "search"


def _dtype(dock: Any) -> str:
    try:
        settings = dock.settings or {}
    except Exception:  # noqa: BLE001 - settings problems are reported by the store
        settings = {}
    dtype = settings.get("search_cache_dtype", DEFAULT_DTYPE)
    return dtype if dtype in ("float32", "float64") else DEFAULT_DTYPE


def _spec_file(dock: Any, entry: dict[str, Any]) -> Path:
    # on_change runs before the index is written, so go through the layout, not dock.resolve
    layout = getattr(dock, "layout", None)
    for s in entry.get("specs") or []:
        if s.get("kind") == "table" and layout is not None and s.get("file_name"):
            path = Path(layout.unpacked_dir(entry["id"])) / s["file_name"]
            if path.is_file():
                return path
    return Path(dock.spec_path(entry["id"], kind="table"))


def _load_items(dock: Any, entries: Iterable[dict[str, Any]]) -> tuple[list[Item], list[str]]:
    items, bad = [], []
    for e in entries:
        if not eligible(e):
            continue
        try:
            z, beta, gamma, _ = read_spec_arrays(_spec_file(dock, e))
        except Exception as exc:  # noqa: BLE001 - a bad spec must not break the dock's commit
            logger.warning("search cache: skipping %s (%s)", str(e["id"])[:12], exc)
            bad.append(e["id"])
            continue
        items.append(Item(e["id"], z, beta, gamma))
    return items, bad


def on_change(dock: Any, added: list[dict[str, Any]], removed: list[str]) -> None:
    """Called by the Dock after each index change, inside the dock lock.

    The Dock calls this before its index session is flushed, so the index on disk still shows
    the previous generation; the cache records ``that + 1``. If the cache was already behind,
    it records ``None`` ("unknown") and the next search catches up by diffing id sets. Errors
    are logged, never raised: the cache is derived data and must not fail a commit.
    """
    added = entry_dicts(added)  # house branch shim
    try:
        disk = dock.generation()
        cache = SearchCache(cache_dir(dock))
        if cache.manifest.get("dtype") is None:
            cache.manifest["dtype"] = _dtype(dock)
        prev = cache.generation
        if prev is None and disk == 0 and not cache.manifest["groups"]:
            prev = 0  # a fresh dock: nothing to have missed
        new_gen = disk + 1 if prev == disk else (disk if prev == disk - 1 else None)
        both = {e["id"] for e in added} & set(removed)
        live = cache.live_ids() if both else set()
        adds = [e for e in added if e["id"] not in both or (eligible(e) and e["id"] not in live)]
        # a status change (same id removed and added) keeps the cached numbers unless now invalid
        rms = [i for i in removed if i not in both or not eligible(next(e for e in added if e["id"] == i))]
        items, bad = _load_items(dock, adds)
        cache.apply(items, rms, new_gen, unreadable=bad)
    except Exception as exc:  # noqa: BLE001
        logger.warning("search cache update failed (%s); the next search will rebuild what it needs", exc)


def sync(dock: Any, entries: list[dict[str, Any]] | None = None) -> tuple[int, int]:
    """Bring the cache to the index's state by diffing id sets. Returns (added, removed)."""
    entries = entry_dicts(dock.entries() if entries is None else entries)  # house branch shim
    want = {e["id"]: e for e in entries if eligible(e)}
    cache = SearchCache(cache_dir(dock))
    if cache.manifest.get("dtype") is None:
        cache.manifest["dtype"] = _dtype(dock)
    have = cache.live_ids()
    add = [want[i] for i in want.keys() - have]
    rm = sorted(have - want.keys())
    items, bad = _load_items(dock, add)
    cache.apply(items, rm, dock.generation(), unreadable=bad)
    return len(items), len(rm)


def rebuild(dock: Any) -> int:
    """Throw the cache away and rebuild it from the index (``lwdock doctor``)."""
    directory = cache_dir(dock)
    if directory.exists():
        shutil.rmtree(directory)
    cache = SearchCache(directory)
    cache.manifest["dtype"] = _dtype(dock)
    items, bad = _load_items(dock, entry_dicts(dock.entries()))  # house branch shim
    cache.apply(items, [], dock.generation(), unreadable=bad)
    return len(items)


def _stale(cache: SearchCache, generation: int, entries: list[dict[str, Any]]) -> bool:
    want = {e["id"] for e in entry_dicts(entries) if eligible(e)}  # house branch shim
    return cache.generation != generation or cache.live_ids() != want


def is_stale(dock: Any) -> bool:
    """True when the cache disagrees with the index (generation or id set); used by doctor."""
    with dock.lock():
        return _stale(SearchCache(cache_dir(dock)), dock.generation(), dock.entries())


def ensure_current(dock: Any, entries: list[dict[str, Any]]) -> SearchCache:
    """The cache for ``entries`` (call under the dock lock); caught up first if it lags."""
    cache = SearchCache(cache_dir(dock))
    gen = dock.generation()
    if _stale(cache, gen, entries):
        if cache.generation is not None or cache.manifest["groups"]:
            logger.warning("search cache was out of date (cache generation %s, index %s); updating it", cache.generation, gen)
        added, removed = sync(dock, entries)
        logger.debug("search cache sync: +%d -%d", added, removed)
        cache = SearchCache(cache_dir(dock))
    return cache
