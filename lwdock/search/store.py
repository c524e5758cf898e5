"""The search store: every learnware's search arrays, grouped by feature space, memory-mapped.

Layout, beside the index (``<dock>/search/``)::

    manifest.json                      format, generation, dtype, groups -> profile, kernel, segments, tombstones
    <group>/state-000007.npz           RBF groups: the kernel (live columns, scales, fill) and its running
                                       statistics (:class:`~lwdock.search.kernel.Pooled`)
    <group>/seg-000001/                one immutable segment
        z.npy (M, p)  beta.npy (M,)  offsets.npy (N+1,)  self.npy (N,)  q10.npy (N,)  sketch.npy (N, s)  ids.npy (N,)

A *group* holds the learnwares of one feature space (:class:`~lwdock.search.space.Profile`); the
dock chooses the group's kernel (:mod:`lwdock.search.kernel`) and stores every spec's points in
that kernel's units (RBF: live columns divided by their scale), so the float32 GEMM and the
pre-filter run on them unchanged. Each change appends a small segment (never rewriting the
others) and writes the group's next state file; a remove records the id in the group's
``removed`` list (and uncounts it from the statistics); a group with more than
:data:`MAX_SEGMENTS` segments or a quarter of its rows removed is compacted into one segment
(stored arrays carried over). When :func:`~lwdock.search.kernel.needs_rebuild` says the kernel
must change, the whole group is rewritten under the new one (amortised O(1) per submit: the dock
must double first).

Consistency: segments and state files are written under a temporary name and renamed, then
``manifest.json`` is replaced atomically, then what no manifest names is deleted. Writers hold
the dock lock; readers read the manifest *and open every array they will use* under the same
lock (:meth:`SegmentStore.group`), so a later writer's deletion cannot pull a file from under a
reader (an open or mapped file outlives its unlinking).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomic
from ..errors import InputDataError
from ..spec.quality import DEGENERATE
from ..spec.registry import TABLE
from . import segments as seg_io
from . import shards as shard_io
from .backends import Backend, RBFBackend, backend_for, prepare
from .blocks import NpyFile
from .idsets import SortedIds
from .kernel import Pooled, RBFKernel, needs_rebuild, normalised_weights
from .prefilter import DEFAULT_FREQUENCIES, squares
from .segments import Segment, group_dir, stack
from .space import NNGP_DEPTH, Profile, profile_of

logger = logging.getLogger("lwdock")

FORMAT = 4  # 1: table-only groups; 2: groups keyed by space + the spec's own kernel; 3: 512-frequency sketches;
# 4: 128-frequency sketches and shards. Older: read as empty, rebuilt
MAX_SEGMENTS = 8
DEFAULT_DTYPE = "float32"
MANIFEST = "manifest.json"


# -- one learnware's arrays -------------------------------------------------------------------
@dataclass
class Item:
    id: str
    profile: Profile
    z: np.ndarray  # (K, p) raw points, flattened
    beta: np.ndarray  # (K,)
    quality: str | None = None  # lwdock.spec.quality.assess(spec)


def item_from_spec(lw_id: str, spec: Any, quality: str | None = None) -> Item:
    """A fitted spec's arrays for the store; InputDataError when they cannot be searched."""
    profile = profile_of(spec)
    z, beta = prepare(profile, spec.z_, spec.beta_)
    if beta.size == 0 or beta.size != z.shape[0]:
        raise InputDataError(f"beta has {beta.size} weights but z has {z.shape[0]} points")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta)) and np.isfinite(np.abs(beta).sum() ** 2)):
        raise InputDataError("z or beta is not finite (or the weights are too large to compare)")
    return Item(lw_id, profile, z, beta, quality)


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Group:
    key: str
    profile: Profile
    backend: Backend
    segments: list[Segment]
    removed: set[str]
    kernel: RBFKernel | None  # None for kernels without parameters (NNGP)
    meta: dict[str, Any] = field(default_factory=dict)
    shards: list[list[int]] = field(default_factory=list)  # positions into ``segments`` (lwdock.search.shards)
    files: list[dict[str, NpyFile]] = field(default_factory=list)  # large segments' z, beta, sketch, opened for pread

    _id_index: SortedIds | None = field(default=None, repr=False)
    _squares: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.shards and self.segments:
            self.shards = [list(range(len(self.segments)))]

    def id_index(self) -> SortedIds:
        """Every segment's ids by key (built on first use, kept while the group is open)."""
        if self._id_index is None:
            self._id_index = SortedIds.build([s.ids for s in self.segments])
        return self._id_index

    def sketch_squares(self, segment: int) -> np.ndarray:
        """A segment's :func:`~lwdock.search.prefilter.squares` (the bounded pre-filter's; built on
        first use, kept while the group is open: 12 KB per learnware of a wide-sketched group)."""
        if segment not in self._squares:
            self._squares[segment] = squares(self.segments[segment].sketch)
        return self._squares[segment]

    def live_ids(self) -> list[str]:
        return [i.decode() for s in self.segments for i in s.ids[s.live]]

    def kernel_info(self) -> dict[str, Any]:
        """The group's search kernel, as ``lwdock info`` and search results show it."""
        base = {"space": self.key, "kind": self.profile.kind, "learnwares": sum(int(s.live.sum()) for s in self.segments),
                "degenerate_specs": len(self.meta.get("degenerate", []))}
        if self.kernel is None:
            return {**base, "kernel": {"name": "nngp", "depth": NNGP_DEPTH}}
        return {**base, "kernel": self.kernel.describe()}


# Groups this process opened, by (store, group, manifest file): segments are immutable and named
# once, and every manifest write replaces the file, so a warm process (an open Dock) keeps their ids,
# key index and mapped arrays between searches instead of reading them again. A file system may
# give a new manifest the inode and mtime tick of one before it (a freed inode reused within one
# tick), so a kept group is used only when its manifest entry is also the same.
KEEP_OPENED = 4
_OPENED: dict[tuple[str, str, tuple[int, int, int]], Group] = {}


def _open_files(path: Path) -> dict[str, NpyFile]:
    """A segment's points, which searches gather in chunks with pread (opened now, under the dock lock)."""
    return {name: NpyFile.open(path / f"{name}.npy") for name in ("z", "beta")}


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
        self._stamp: tuple[int, int, int] | None = None  # the manifest file's identity (see _OPENED)
        try:
            with open(self.directory / MANIFEST, "rb") as f:  # identity and bytes of one file (no lock: shard actors)
                st = os.fstat(f.fileno())
                raw = f.read()
            self._stamp = (st.st_dev, st.st_ino, st.st_mtime_ns)
            data = json.loads(raw)
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

    def group(self, key: str, shared: bool = True) -> Group | None:
        """The group of ``key`` with every segment opened (memory-mapped); None when there is none.
        ``shared=False``: read its files again even if this process opened them (doctor's check)."""
        meta = self.manifest["groups"].get(key)
        if meta is None:
            return None
        if key not in self._groups or not shared:
            sig = (str(self.directory), key, self._stamp)
            kept = _OPENED.get(sig) if shared and self._stamp is not None else None
            if kept is not None and kept.meta == meta:  # the same manifest and entry: the same files, opened
                self._groups[key] = kept
                return kept
            profile = Profile.from_dict(meta["profile"])
            gdir = self.directory / group_dir(profile)
            segs = [Segment.load(gdir / name) for name in meta["segments"]]
            removed = set(meta.get("removed", []))
            rm = np.array(sorted(removed), dtype=bytes) if removed else np.zeros(0, dtype=bytes)
            for s in segs:
                s.live = ~np.isin(s.ids, rm) if rm.size else np.ones(s.ids.size, bool)
            kernel = _load_kernel(gdir, meta) if profile.kernel == "rbf" else None
            files = [_open_files(gdir / name) for name in meta["segments"]]
            self._groups[key] = Group(key, profile, backend_for(profile, kernel, _frequencies(meta)), segs, removed, kernel, meta,
                                      shard_io.indices(meta), files)
            if self._stamp is not None:  # a manifest this store wrote itself is not shared
                while len(_OPENED) >= KEEP_OPENED:
                    _OPENED.pop(next(iter(_OPENED)))
                _OPENED[sig] = self._groups[key]
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
        by_key: dict[str, list[Item]] = {}
        for item in added:
            by_key.setdefault(item.profile.key, []).append(item)
        for key in list(dict.fromkeys([*manifest["groups"], *by_key])):
            self._update(manifest, key, by_key.get(key, []), removed)
        for key, meta in manifest["groups"].items():
            self._maybe_compact(manifest, key, meta)
        manifest["groups"] = {k: m for k, m in manifest["groups"].items() if m["segments"]}
        stored = {(i.profile.kind, i.id) for i in added}
        bad = {(k, i) for k, i in self.unreadable() if i not in removed} | set(unreadable)
        manifest["unreadable"] = sorted([k, i] for k, i in bad - stored)
        manifest["generation"] = generation
        self._commit(manifest)

    def _update(self, manifest: dict[str, Any], key: str, items: list[Item], removed: set[str]) -> None:
        """One group's share of a change: uncount and tombstone ``removed``, count and append ``items``
        (or rewrite the group under a new kernel when it must change)."""
        old = self.group(key)
        present = _stored_among(old, removed) if old is not None else set()
        if not items and not present:
            return
        if old is None:
            self._rewrite(manifest, key, items[0].profile, [], items)
            return
        meta = manifest["groups"][key]
        new_ids = {i.id for i in items}
        if old.kernel is not None:
            pooled = _load_pooled(self.directory / group_dir(old.profile), meta)
            leaving = present - old.removed
            if leaving:  # uncount the newest stored copy of each learnware that leaves
                pooled.remove(*_newest_copies(old, leaving)[1:])
            if items:
                pooled.add([i.id for i in items], *stack([i.z for i in items], [i.beta for i in items]))
                if (needs_rebuild(old.kernel, pooled.kernel(old.kernel.built_at_n), pooled.n)
                        or _frequencies(meta) > _width(pooled.n)):  # grown past its wide sketches: narrow them
                    keep = _newest_rows(old, old.removed | present | new_ids)
                    self._rewrite(manifest, key, old.profile, list(zip(keep[0], *_split(keep))), items)
                    return
            _write_state(self.directory / group_dir(old.profile), manifest, meta, pooled, old.kernel)
        meta["removed"] = sorted(set(meta.get("removed", [])) | present)
        meta["degenerate"] = sorted(set(meta.get("degenerate", [])) - present)
        if items:
            self._append(manifest, meta, old, items)

    def _append(self, manifest: dict[str, Any], meta: dict[str, Any], old: Group, items: list[Item]) -> None:
        gdir = self.directory / group_dir(old.profile)
        name = _next_name(manifest, "seg")
        z, beta, offsets = stack([i.z for i in items], [i.beta for i in items])
        seg_io.write_built(gdir / name, [i.id for i in items], old.backend, z, beta, offsets,
                           old.backend.storage_dtype(manifest["dtype"]))
        sizes = {n: s.ids.size for n, s in zip(meta["segments"], old.segments)}
        meta["shards"] = _place(shard_io.layout(meta), sizes, name, len(items))
        meta["segments"].append(name)
        new_ids = {i.id for i in items}
        again = _stored_among(old, new_ids)
        if again:  # re-added after a remove: compaction keeps the newest copy only
            meta["_force_compact"] = sorted(again)
        meta["removed"] = sorted(set(meta.get("removed", [])) - new_ids)
        meta["degenerate"] = _degenerate(meta, items)

    def _rewrite(self, manifest: dict[str, Any], key: str, profile: Profile,
                 kept: list[tuple[str, np.ndarray, np.ndarray]], items: list[Item]) -> None:
        """Write the whole group as one segment under the kernel its learnwares give (a new group,
        or a rebuild): ``kept`` (id, raw z, beta) of the stored learnwares, then ``items``."""
        ids = [k[0] for k in kept] + [i.id for i in items]
        z, beta, offsets = stack([k[1] for k in kept] + [i.z for i in items], [k[2] for k in kept] + [i.beta for i in items])
        gdir = self.directory / group_dir(profile)
        gdir.mkdir(parents=True, exist_ok=True)
        old = manifest["groups"].get(key, {})
        meta = {"profile": profile.to_dict(), "segments": [], "removed": [],
                "degenerate": sorted((set(old.get("degenerate", [])) & {k[0] for k in kept}))}
        kernel = None
        if profile.kernel == "rbf":
            pooled = Pooled.start(z, beta, offsets)
            pooled.add(ids, z, beta, offsets)
            kernel = pooled.kernel()
            _write_state(gdir, manifest, meta, pooled, kernel)
            meta["frequencies"] = _width(len(ids))
        else:
            meta["kernel"] = {"name": "nngp", "depth": NNGP_DEPTH}
        backend = backend_for(profile, kernel, _frequencies(meta))
        meta["segments"] = []
        for a in range(0, len(ids), shard_io.SHARD_ROWS):  # one segment per shard
            b = min(len(ids), a + shard_io.SHARD_ROWS)
            name = _next_name(manifest, "seg")
            lo, hi = int(offsets[a]), int(offsets[b])
            seg_io.write_built(gdir / name, ids[a:b], backend, z[lo:hi], beta[lo:hi], offsets[a : b + 1] - lo,
                               backend.storage_dtype(manifest["dtype"]))
            meta["segments"].append(name)
        meta["shards"] = [[n] for n in meta["segments"]]
        meta["degenerate"] = _degenerate(meta, items)
        manifest["groups"][key] = meta

    def _maybe_compact(self, manifest: dict[str, Any], key: str, meta: dict[str, Any]) -> None:
        """Compact each shard that has more than :data:`MAX_SEGMENTS` segments, a quarter of its rows
        removed, or an older copy of a re-added learnware, into one segment (the others untouched)."""
        again = set(meta.pop("_force_compact", []) or [])
        layout = shard_io.layout(meta)
        removed = set(meta.get("removed", []))
        if not again and not removed and all(len(s) <= MAX_SEGMENTS for s in layout):
            return
        gdir = self.directory / group_dir(Profile.from_dict(meta["profile"]))
        order = list(meta["segments"])
        segs = {n: Segment.load(gdir / n) for n in order}
        rm = _bytes(removed)
        newest = None
        if again:  # the newest copy of every id over the whole group, in age order
            picks = seg_io.newest_live([segs[n] for n in order], removed)
            newest = {(order[si], i) for si, i in picks}
        replaced: dict[str, str | None] = {}
        for shard in layout:
            rows = sum(segs[n].ids.size for n in shard)
            local = [segs[n] for n in shard]
            if newest is not None:  # rows replaced by a newer copy (or removed) must go now
                picks = [(si, i) for si, n in enumerate(shard) for i in range(segs[n].ids.size) if (n, i) in newest]
                stale = len(picks) < rows
            else:
                picks, stale = [], False
            dead = sum(int(np.isin(segs[n].ids, rm).sum()) for n in shard) if rm.size else 0
            if not stale and len(shard) <= MAX_SEGMENTS and dead * 4 < rows:
                continue
            if newest is None:
                picks = seg_io.newest_live(local, removed)
            name = _next_name(manifest, "seg") if picks else None
            if name is not None:
                seg_io.write_picks(gdir / name, local, picks)
            replaced.update({n: None for n in shard})
            replaced[shard[0]] = name
        if not replaced:
            return
        meta["segments"] = [replaced.get(n, n) for n in order if replaced.get(n, n) is not None]
        meta["shards"] = [s for s in ([replaced.get(n, n) for n in shard if replaced.get(n, n) is not None]
                                      for shard in layout) if s]
        kept = [segs[n] for n in order if n not in replaced]
        meta["removed"] = sorted({x.decode() for s in kept for x in s.ids[np.isin(s.ids, rm)]}) if rm.size else []

    def _commit(self, manifest: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / MANIFEST, json.dumps(manifest, indent=1).encode())
        self.manifest = manifest
        self._stamp = None  # groups opened from this written manifest are not shared
        self._groups.clear()
        collect_garbage(self.directory, manifest)


def _bytes(ids: Iterable[str]) -> np.ndarray:
    return np.array(sorted(i.encode() for i in ids), dtype=bytes) if ids else np.zeros(0, dtype=bytes)


def _place(layout: list[list[str]], sizes: dict[str, int], name: str, n: int) -> list[list[str]]:
    """The shards after appending segment ``name`` of ``n`` learnwares: into the smallest shard
    while it holds fewer than :data:`~lwdock.search.shards.SHARD_ROWS`, else as a new shard."""
    out = [list(s) for s in layout]
    totals = [sum(sizes.get(x, 0) for x in s) for s in out]
    if out and min(totals) + n <= max(shard_io.SHARD_ROWS, n) and min(totals) < shard_io.SHARD_ROWS:
        out[int(np.argmin(totals))].append(name)
    else:
        out.append([name])
    return out


def _next_name(manifest: dict[str, Any], prefix: str) -> str:
    n = int(manifest.get("next_segment", 1))
    manifest["next_segment"] = n + 1
    return f"{prefix}-{n:06d}"


def _copies_of(group: Group, ids: Iterable[str]) -> list[tuple[int, int]]:
    """(segment, row) of every stored copy of ``ids`` (live or tombstoned), by the group's key
    index: not a pass over every stored id (decoding 1,000,000 ids cost ~1 s per submit)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    found = group.id_index().positions(np.array([i.encode() for i in wanted], dtype=bytes))
    return [(si, int(p)) for si, pos in enumerate(found) for p in pos]


def _stored_among(group: Group, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` any segment of the group holds."""
    return {group.segments[si].ids[p].decode() for si, p in _copies_of(group, ids)}


def _frequencies(meta: dict[str, Any]) -> int:
    """An RBF group's sketch width (groups written before widths varied: the narrow default)."""
    return int(meta.get("frequencies", DEFAULT_FREQUENCIES))


def _width(n: int) -> int:
    """The sketch width a group of ``n`` table or text learnwares is written with."""
    return RBFBackend.budget.frequencies(n)


def _degenerate(meta: dict[str, Any], items: list[Item]) -> list[str]:
    ids = {i.id for i in items}
    return sorted((set(meta.get("degenerate", [])) - ids) | {i.id for i in items if i.quality == DEGENERATE})


def _newest_rows(group: Group, exclude: set[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(ids, raw z, beta, offsets) of the newest stored copy of every id not in ``exclude`` (the
    removed and replaced ones: what a rewrite keeps)."""
    return _raw_rows(group, seg_io.newest_live(group.segments, exclude))


def _newest_copies(group: Group, ids: set[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_newest_rows` of ``ids`` only (what a remove uncounts), found by the group's key index,
    in the order :func:`lwdock.search.segments.newest_live` gives: segments oldest first, rows last first."""
    newest = {group.segments[si].ids[p]: (si, p) for si, p in _copies_of(group, ids)}  # later segments overwrite
    return _raw_rows(group, sorted(newest.values(), key=lambda sp: (sp[0], -sp[1])))


def _raw_rows(group: Group, picks: list[tuple[int, int]]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(ids, raw z, beta, offsets) of the stored rows ``picks`` ((segment, row) pairs), stacked."""
    assert group.kernel is not None
    if not picks:
        return [], np.zeros((0, group.kernel.dim)), np.zeros(0), np.zeros(1, dtype=np.int64)
    rows = [group.segments[si].rows(i) for si, i in picks]
    z, beta, offsets = stack([group.kernel.unmap(r[0]) for r in rows], [r[1] for r in rows])
    return [group.segments[si].ids[i].decode() for si, i in picks], z, beta, offsets


def _split(rows: tuple[list[str], np.ndarray, np.ndarray, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    _, z, beta, off = rows
    return ([z[a:b] for a, b in zip(off[:-1], off[1:])], [beta[a:b] for a, b in zip(off[:-1], off[1:])])


# -- the kernel's files -------------------------------------------------------------------------
def _load_kernel(gdir: Path, meta: dict[str, Any]) -> RBFKernel:
    with np.load(gdir / meta["state"], allow_pickle=False) as f:
        live, scale, fill = f["live"].astype(bool), f["scale"], f["fill"]
    k = meta["kernel"]
    return RBFKernel(live, scale, fill, float(k["gamma"]), int(k["built_at_n"]))


def _load_pooled(gdir: Path, meta: dict[str, Any]) -> Pooled:
    with np.load(gdir / meta["state"], allow_pickle=False) as f:
        return Pooled(f["origin"], int(meta["kernel"]["n"]), f["m1"], f["m2"], f["res_z"].astype(np.float64),
                      f["res_key"])


def _write_state(gdir: Path, manifest: dict[str, Any], meta: dict[str, Any], pooled: Pooled, kernel: RBFKernel) -> None:
    name = _next_name(manifest, "state") + ".npz"
    tmp = gdir / f".tmp-{name}"
    with open(tmp, "wb") as fh:
        np.savez(fh, live=kernel.live, scale=kernel.scale, fill=kernel.fill, origin=pooled.origin, m1=pooled.m1,
                 m2=pooled.m2, res_z=pooled.res_z.astype(np.float32), res_key=pooled.res_key)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, gdir / name)
    meta["state"] = name
    meta["kernel"] = {"name": "rbf", "gamma": kernel.gamma, "built_at_n": kernel.built_at_n, "n": pooled.n,
                      "id": kernel.id}


def collect_garbage(directory: Path, manifest: dict[str, Any]) -> None:
    """Delete what the manifest does not name: segments and state files left by a crash, a
    compaction or a rebuild, groups that emptied, files of an older layout. Runs under the dock
    lock, after the manifest is written."""
    groups = {group_dir(Profile.from_dict(m["profile"])): {*m["segments"], *([m["state"]] if "state" in m else [])}
              for m in manifest["groups"].values()}
    for path in directory.iterdir() if directory.exists() else ():
        if path.name == MANIFEST:
            continue
        keep = groups.get(path.name) if path.is_dir() else None
        if keep is None:
            seg_io.remove(path)
            continue
        for entry in path.iterdir():
            if entry.name not in keep:
                seg_io.remove(entry)


def check(store: SegmentStore) -> list[str]:
    """What is wrong with the stored arrays (unreadable files, inconsistent shapes, non-finite
    self products); ``lwdock doctor`` rebuilds the store when this is not empty."""
    problems = []
    for key in store.keys():
        try:
            g = store.group(key, shared=False)
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"search store group {key}: unreadable ({exc})")
            continue
        assert g is not None
        width = g.kernel.n_live if g.kernel is not None else None
        sketch = 2 * _frequencies(g.meta) if g.kernel is not None else None
        for s in g.segments:
            if not s.consistent(width) or (sketch is not None and s.sketch.shape[1] != sketch):
                problems.append(f"search store group {key}, segment {s.name}: inconsistent arrays")
    return problems


Chunk = tuple[list[str], np.ndarray, np.ndarray, np.ndarray]  # ids, raw z, beta, offsets of some learnwares


def bulk_load(
    directory: str | os.PathLike[str], ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray,
    dtype: str = DEFAULT_DTYPE, generation: int | None = 0, chunk: int = 10_000,
) -> SegmentStore:
    """A store with one table group written from stacked raw arrays, without a dock (benchmarks
    and migrations: no spec files are read). The kernel is chosen as for a dock; groups larger
    than :data:`~lwdock.search.shards.SHARD_ROWS` are written as several shards."""
    offsets = np.asarray(offsets, dtype=np.int64)

    def chunks() -> Iterable[Chunk]:
        step = shard_io.SHARD_ROWS
        for a in range(0, len(ids), step):
            b = min(len(ids), a + step)
            lo, hi = int(offsets[a]), int(offsets[b])
            yield ids[a:b], z[lo:hi], beta[lo:hi], offsets[a : b + 1] - lo

    return bulk_load_chunks(directory, chunks, dtype, generation, chunk=chunk)


def bulk_load_chunks(
    directory: str | os.PathLike[str], chunks: Callable[[], Iterable[Chunk]], dtype: str = DEFAULT_DTYPE,
    generation: int | None = 0, chunk: int = 10_000, shard_rows: int | None = None,
) -> SegmentStore:
    """:func:`bulk_load` from chunks of learnwares that need not fit in memory together.

    ``chunks()`` is called twice and must give the same chunks both times: once to choose the
    kernel (running statistics, as a dock counts its submits), once to write one segment per
    chunk (``chunk``: learnwares mapped at a time inside it). Segments fill shards of up to
    ``shard_rows`` learnwares (default :data:`~lwdock.search.shards.SHARD_ROWS`) in order."""
    shard_rows = shard_rows or shard_io.SHARD_ROWS
    pooled: Pooled | None = None
    rng = np.random.default_rng(0)  # one seeded generator for the whole load (A-Res keys, as per-id seeds would give)
    dim = 0
    for ids, z, beta, offsets in chunks():
        offsets = np.asarray(offsets, dtype=np.int64)
        if pooled is None:
            pooled = Pooled.start(z, beta, offsets)
            dim = int(z.shape[1])
        w = normalised_weights(beta, offsets)
        keys = np.full(w.size, -np.inf)
        pos = w > 0
        keys[pos] = np.log(np.maximum(rng.random(int(pos.sum())), 1e-300)) / w[pos]
        pooled.add(ids, z, beta, offsets, keys=keys)
    if pooled is None:
        raise InputDataError("bulk load of no learnwares")
    kernel = pooled.kernel()
    profile = Profile(TABLE, (("dim", dim),))
    store = SegmentStore(directory, dtype)
    gdir = store.directory / group_dir(profile)
    gdir.mkdir(parents=True, exist_ok=True)
    manifest = _empty_manifest(dtype)
    meta: dict[str, Any] = {"profile": profile.to_dict(), "segments": [], "removed": [], "degenerate": [],
                            "shards": [], "frequencies": _width(pooled.n)}
    _write_state(gdir, manifest, meta, pooled, kernel)
    backend = backend_for(profile, kernel, meta["frequencies"])
    filled = shard_rows
    for ids, z, beta, offsets in chunks():
        name = _next_name(manifest, "seg")
        seg_io.write_built(gdir / name, list(ids), backend, z, beta, offsets, dtype, chunk=chunk)
        meta["segments"].append(name)
        if filled + len(ids) > shard_rows:
            meta["shards"].append([])
            filled = 0
        meta["shards"][-1].append(name)
        filled += len(ids)
    manifest["groups"][profile.key] = meta
    manifest["generation"] = generation
    store._commit(manifest)
    return store
