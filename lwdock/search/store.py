"""The search store: every learnware's search arrays, grouped by compatibility key, memory-mapped.

Layout, beside the index (``<dock>/search/``)::

    manifest.json                      format, generation, dtype, groups -> profile, segments, tombstones
    <group>/rff.npy                    backend state (the RBF backend's random frequencies)
    <group>/seg-000001/                one immutable segment
        z.npy (M, p)  beta.npy (M,)  offsets.npy (N+1,)  self.npy (N,)  sketch.npy (N, s)  ids.npy (N,)

A *group* holds the learnwares of one :class:`~lwdock.search.space.Profile` (same spec type,
feature space and kernel): only those can be compared. Each change appends a small segment
(never rewriting the others); a remove records the id in the group's ``removed`` list; a group
with more than :data:`MAX_SEGMENTS` segments or a quarter of its rows removed is compacted into
one segment (stored self products and sketches are carried over, not recomputed).

Consistency: segments are written under a temporary name and renamed, then ``manifest.json`` is
replaced atomically, then folders no manifest names are deleted. Writers hold the dock lock;
readers read the manifest *and open every array they will use* under the same lock
(:meth:`SegmentStore.group` memory-maps them), so a later writer's deletion cannot pull a file
from under a reader (an open or mapped file outlives its unlinking).
"""

from __future__ import annotations

import copy
import hashlib
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
from ..errors import InputDataError
from ..spec.registry import TABLE
from .backends import Backend, backend_for
from .space import Profile, profile_of

logger = logging.getLogger("lwdock")

FORMAT = 2  # 1: table-only groups (and separate dense-*.npz caches); read as empty, rebuilt
MAX_SEGMENTS = 8
DEFAULT_DTYPE = "float32"
MANIFEST = "manifest.json"


# -- one learnware's arrays -------------------------------------------------------------------
@dataclass
class Item:
    id: str
    profile: Profile
    z: np.ndarray  # (K, p) points as the backend keeps them
    beta: np.ndarray  # (K,)


def item_from_spec(lw_id: str, spec: Any) -> Item:
    """A fitted spec's arrays for the store; InputDataError when they cannot be searched."""
    profile = profile_of(spec)
    z, beta = backend_for(profile).prepare(spec.z_, spec.beta_)
    if beta.size == 0 or beta.size != z.shape[0]:
        raise InputDataError(f"beta has {beta.size} weights but z has {z.shape[0]} points")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta)) and np.isfinite(np.abs(beta).sum() ** 2)):
        raise InputDataError("z or beta is not finite (or the weights are too large to compare)")
    return Item(lw_id, profile, z, beta)


def group_dir(profile: Profile) -> str:
    return f"{profile.dirname}-{hashlib.sha1(profile.key.encode()).hexdigest()[:8]}"


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

    @classmethod
    def load(cls, path: Path) -> Segment:
        def arr(n: str, mmap: bool = False) -> np.ndarray:
            return np.load(path / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

        return cls(path.name, arr("z", True), arr("beta", True), arr("offsets"), arr("self"), arr("sketch", True),
                   arr("ids"))

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.asarray(self.z[s:e]), np.asarray(self.beta[s:e], dtype=np.float64)


@dataclass
class Group:
    key: str
    profile: Profile
    backend: Backend
    segments: list[Segment]
    removed: set[str]

    def live_ids(self) -> list[str]:
        return [i.decode() for s in self.segments for i in s.ids[s.live]]


def _empty_manifest(dtype: str | None = None) -> dict[str, Any]:
    return {"format": FORMAT, "generation": None, "dtype": dtype, "groups": {}, "next_segment": 1, "unreadable": []}


class SegmentStore:
    """A read view of one manifest; :meth:`apply` writes the next one (under the dock lock)."""

    def __init__(self, directory: str | os.PathLike[str], dtype: str | None = None) -> None:
        self.directory = Path(directory)
        self.manifest = self._read_manifest()
        if self.manifest.get("dtype") is None:
            self.manifest["dtype"] = dtype if dtype in ("float32", "float64") else DEFAULT_DTYPE
        self._groups: dict[str, Group] = {}

    def _read_manifest(self) -> dict[str, Any]:
        try:
            data = json.loads((self.directory / MANIFEST).read_text())
        except FileNotFoundError:
            return _empty_manifest()
        except (OSError, ValueError) as exc:
            logger.warning("search store manifest unreadable (%s); it will be rebuilt", exc)
            return _empty_manifest()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return _empty_manifest()  # an older layout: caught up from the index like a lost cache
        return data

    @property
    def generation(self) -> int | None:
        return self.manifest.get("generation")

    @property
    def dtype(self) -> str:
        return str(self.manifest["dtype"])

    def keys(self) -> list[str]:
        return list(self.manifest["groups"])

    def group(self, key: str) -> Group | None:
        """The group of ``key`` with every segment opened (memory-mapped); None when there is none."""
        meta = self.manifest["groups"].get(key)
        if meta is None:
            return None
        if key not in self._groups:
            profile = Profile.from_dict(meta["profile"])
            gdir = self.directory / group_dir(profile)
            segs = [Segment.load(gdir / name) for name in meta["segments"]]
            removed = set(meta.get("removed", []))
            rm = np.array(sorted(removed), dtype=bytes) if removed else np.zeros(0, dtype=bytes)
            for s in segs:
                s.live = ~np.isin(s.ids, rm) if rm.size else np.ones(s.ids.size, bool)
            self._groups[key] = Group(key, profile, backend_for(profile, gdir), segs, removed)
        return self._groups[key]

    def unreadable(self) -> set[tuple[str, str]]:
        """(kind, id) of learnwares whose spec could not be read into the store."""
        return {(str(k), str(i)) for k, i in self.manifest.get("unreadable", [])}

    def live(self) -> set[tuple[str, str]]:
        """(kind, id) of every learnware the store accounts for (stored or unreadable)."""
        out = self.unreadable()
        for key in self.keys():
            g = self.group(key)
            assert g is not None
            out.update((g.profile.kind, i) for i in g.live_ids())
        return out

    def profiles_of(self, kind: str) -> dict[str, Profile]:
        """id -> profile of the stored learnwares of ``kind`` (explanations)."""
        out: dict[str, Profile] = {}
        for key in self.keys():
            g = self.group(key)
            if g is not None and g.profile.kind == kind:
                out.update((i, g.profile) for i in g.live_ids())
        return out

    # -- writing (caller holds the dock lock) -----------------------------------------------
    def apply(self, added: Iterable[Item], removed: Iterable[str], generation: int | None,
              unreadable: Iterable[tuple[str, str]] = ()) -> None:
        """Append ``added``, tombstone the ids in ``removed`` (every kind), record ``unreadable``."""
        manifest = copy.deepcopy(self.manifest)
        added, removed = list(added), set(removed)
        self._tombstone(manifest, removed)
        by_key: dict[str, list[Item]] = {}
        for item in added:
            by_key.setdefault(item.profile.key, []).append(item)
        for key, items in by_key.items():
            self._append(manifest, key, items)
        for key, meta in manifest["groups"].items():
            self._maybe_compact(manifest, key, meta)
        manifest["groups"] = {k: m for k, m in manifest["groups"].items() if m["segments"]}
        stored = {(i.profile.kind, i.id) for i in added}
        bad = {(k, i) for k, i in self.unreadable() if i not in removed} | set(unreadable)
        manifest["unreadable"] = sorted([k, i] for k, i in bad - stored)
        manifest["generation"] = generation
        self._commit(manifest)

    def _tombstone(self, manifest: dict[str, Any], removed: set[str]) -> None:
        if not removed:
            return
        for key, meta in manifest["groups"].items():
            g = self.group(key)
            assert g is not None
            present = {x.decode() for s in g.segments for x in s.ids}
            if removed & present:
                meta["removed"] = sorted(set(meta.get("removed", [])) | (removed & present))

    def _append(self, manifest: dict[str, Any], key: str, items: list[Item]) -> None:
        profile = items[0].profile
        meta = manifest["groups"].setdefault(key, {"profile": profile.to_dict(), "segments": [], "removed": []})
        gdir = self.directory / group_dir(profile)
        gdir.mkdir(parents=True, exist_ok=True)
        backend = backend_for(profile, gdir)
        name = _next_segment(manifest)
        z, beta, offsets = stack([i.z for i in items], [i.beta for i in items])
        selfs, sketch = backend.self_products(z, beta, offsets), backend.sketches(z, beta, offsets)
        write_segment(gdir / name, [i.id for i in items], z, beta, offsets, selfs, sketch,
                      backend.storage_dtype(manifest["dtype"]))
        meta["segments"].append(name)
        new_ids = {i.id for i in items}
        old = self.group(key)
        if old is not None and new_ids & {x.decode() for s in old.segments for x in s.ids}:
            meta["_force_compact"] = True  # re-added after a remove: compaction keeps the newest copy only
        meta["removed"] = sorted(set(meta.get("removed", [])) - new_ids)

    def _maybe_compact(self, manifest: dict[str, Any], key: str, meta: dict[str, Any]) -> None:
        force = meta.pop("_force_compact", False)
        removed = set(meta.get("removed", []))
        if not force and len(meta["segments"]) <= MAX_SEGMENTS and not removed:
            return
        gdir = self.directory / group_dir(Profile.from_dict(meta["profile"]))
        segs = [Segment.load(gdir / n) for n in meta["segments"]]
        if not force and len(meta["segments"]) <= MAX_SEGMENTS and len(removed) * 4 < sum(s.ids.size for s in segs):
            return
        picks = _newest_live(segs, removed)
        meta["removed"] = []
        if not picks:
            meta["segments"] = []
            return
        name = _next_segment(manifest)
        _write_picks(gdir / name, segs, picks)
        meta["segments"] = [name]

    def _commit(self, manifest: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / MANIFEST, json.dumps(manifest, indent=1).encode())
        self.manifest = manifest
        self._groups.clear()
        collect_garbage(self.directory, manifest)


def _next_segment(manifest: dict[str, Any]) -> str:
    n = int(manifest.get("next_segment", 1))
    manifest["next_segment"] = n + 1
    return f"seg-{n:06d}"


def stack(zs: list[np.ndarray], betas: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([b.size for b in betas])]).astype(np.int64)
    return np.concatenate(zs), np.concatenate(betas), offsets


def _newest_live(segs: list[Segment], removed: set[str]) -> list[tuple[int, int]]:
    """(segment, row) of each live id's newest copy, oldest first."""
    seen: set[str] = set()
    picks: list[tuple[int, int]] = []
    for si in range(len(segs) - 1, -1, -1):
        for i, raw in enumerate(segs[si].ids):
            sid = raw.decode()
            if sid not in removed and sid not in seen:
                seen.add(sid)
                picks.append((si, i))
    return picks[::-1]


def _write_picks(path: Path, segs: list[Segment], picks: list[tuple[int, int]]) -> None:
    rows = [segs[si].rows(i) for si, i in picks]
    z, beta, offsets = stack([r[0] for r in rows], [r[1] for r in rows])
    selfs = np.array([segs[si].self_[i] for si, i in picks])
    sketch = np.stack([np.asarray(segs[si].sketch[i]) for si, i in picks])
    ids = [segs[si].ids[i].decode() for si, i in picks]
    write_segment(path, ids, z, beta, offsets, selfs, sketch, str(segs[0].z.dtype))


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def write_segment(path: Path, ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray,
                  selfs: np.ndarray, sketch: np.ndarray, dtype: str) -> None:
    """Write one immutable segment: under a temporary name, renamed into place when complete."""
    tmp = path.with_name(f".tmp-{path.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _save(tmp / "z.npy", np.ascontiguousarray(z, dtype=dtype))
    _save(tmp / "beta.npy", np.asarray(beta, dtype=dtype))
    _save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    _save(tmp / "self.npy", np.asarray(selfs, dtype=np.float64))
    _save(tmp / "sketch.npy", np.asarray(sketch, dtype=np.float32))
    _save(tmp / "ids.npy", np.array([i.encode() for i in ids], dtype=bytes))
    os.replace(tmp, path)


def collect_garbage(directory: Path, manifest: dict[str, Any]) -> None:
    """Delete what the manifest does not name: segments left by a crash or a compaction, groups
    that emptied, files of an older layout. Runs under the dock lock, after the manifest is written."""
    groups = {group_dir(Profile.from_dict(m["profile"])): set(m["segments"]) for m in manifest["groups"].values()}
    for path in directory.iterdir() if directory.exists() else ():
        if path.name == MANIFEST:
            continue
        keep = groups.get(path.name) if path.is_dir() else None
        if keep is None:
            _remove(path)
            continue
        for seg in path.iterdir():
            if seg.is_dir() and seg.name not in keep:
                _remove(seg)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def check(store: SegmentStore) -> list[str]:
    """What is wrong with the stored arrays (unreadable files, inconsistent shapes, non-finite
    self products); ``lwdock doctor`` rebuilds the store when this is not empty."""
    problems = []
    for key in store.keys():
        try:
            g = store.group(key)
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"search store group {key}: unreadable ({exc})")
            continue
        assert g is not None
        for s in g.segments:
            n = s.ids.size
            ok = (s.offsets.shape == (n + 1,) and int(s.offsets[0]) == 0 and int(s.offsets[-1]) == s.z.shape[0]
                  == s.beta.shape[0] and s.self_.shape == (n,) and s.sketch.shape[0] == n
                  and bool(np.all(np.diff(s.offsets) > 0)) and bool(np.all(np.isfinite(s.self_))))
            if not ok:
                problems.append(f"search store group {key}, segment {s.name}: inconsistent arrays")
    return problems


def bulk_load(
    directory: str | os.PathLike[str], ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray,
    gamma: float, dtype: str = DEFAULT_DTYPE, generation: int | None = 0,
) -> SegmentStore:
    """A store with one table group written from stacked arrays in one segment, without a dock
    (benchmarks and migrations: no spec files are read)."""
    profile = Profile(TABLE, (("dim", int(z.shape[1])),), "rbf", (("gamma", float(gamma)),))
    store = SegmentStore(directory, dtype)
    gdir = store.directory / group_dir(profile)
    gdir.mkdir(parents=True, exist_ok=True)
    backend = backend_for(profile, gdir)
    manifest = _empty_manifest(dtype)
    name = _next_segment(manifest)
    offsets = np.asarray(offsets, dtype=np.int64)
    # self products and sketches from the full-precision input
    write_segment(gdir / name, ids, z, beta, offsets, backend.self_products(z, beta, offsets),
                  backend.sketches(z, beta, offsets), dtype)
    manifest["groups"][profile.key] = {"profile": profile.to_dict(), "segments": [name], "removed": []}
    manifest["generation"] = generation
    store._commit(manifest)
    return store
