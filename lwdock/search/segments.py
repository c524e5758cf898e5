"""Segments of the search store: immutable folders of stacked arrays, written once, mapped to read.

A segment holds N learnwares of one group, their points in the group kernel's units::

    z.npy (M, p)  beta.npy (M,)  offsets.npy (N+1,)  self.npy (N,)  q10.npy (N,)  sketch.npy (N, s)  ids.npy (N,)

``self``: ``<R,R>`` under the group kernel; ``q10``: the learnware's own-density quantile that
coverage compares against (NaN where coverage does not apply); ``sketch``: the pre-filter's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .space import Profile


def group_dir(profile: Profile) -> str:
    return f"{profile.dirname}-{hashlib.sha1(profile.key.encode()).hexdigest()[:8]}"


@dataclass
class Segment:
    name: str
    z: np.ndarray
    beta: np.ndarray
    offsets: np.ndarray
    self_: np.ndarray
    q10: np.ndarray
    sketch: np.ndarray
    ids: np.ndarray  # bytes
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def load(cls, path: Path) -> Segment:
        def arr(n: str, mmap: bool = False) -> np.ndarray:
            a = np.load(path / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            # a plain view of the map: np.memmap's __getitem__ costs ~3 us a slice, and search slices per row
            return a.view(np.ndarray) if mmap else a

        return cls(path.name, arr("z", True), arr("beta", True), arr("offsets"), arr("self"), arr("q10"),
                   arr("sketch", True), arr("ids"))

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.asarray(self.z[s:e]), np.asarray(self.beta[s:e], dtype=np.float64)

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of the learnwares at ``positions``, stacked (through the map), with new offsets."""
        lens = np.diff(self.offsets)[positions]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        rows = np.repeat(self.offsets[positions] - offsets[:-1], lens) + np.arange(int(offsets[-1]))
        return self.z[rows], self.beta[rows], offsets

    def consistent(self, width: int | None) -> bool:
        n = self.ids.size
        return (self.offsets.shape == (n + 1,) and int(self.offsets[0]) == 0
                and int(self.offsets[-1]) == self.z.shape[0] == self.beta.shape[0] and self.self_.shape == (n,)
                and self.q10.shape == (n,) and self.sketch.shape[0] == n and (width is None or self.z.shape[1] == width)
                and bool(np.all(np.diff(self.offsets) > 0)) and bool(np.all(np.isfinite(self.self_))))


def stack(zs: list[np.ndarray], betas: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([b.size for b in betas])]).astype(np.int64)
    return np.concatenate(zs), np.concatenate(betas), offsets


def newest_live(segs: list[Segment], removed: set[str]) -> list[tuple[int, int]]:
    """(segment, row) of each id's newest copy, ids in ``removed`` left out, oldest first."""
    seen: set[str] = set()
    picks: list[tuple[int, int]] = []
    for si in range(len(segs) - 1, -1, -1):
        for i, raw in enumerate(segs[si].ids):
            sid = raw.decode()
            if sid not in removed and sid not in seen:
                seen.add(sid)
                picks.append((si, i))
    return picks[::-1]


def write_picks(path: Path, segs: list[Segment], picks: list[tuple[int, int]]) -> None:
    """A compacted segment: the picked learnwares' stored arrays, carried over (nothing recomputed)."""
    rows = [segs[si].rows(i) for si, i in picks]
    z, beta, offsets = stack([r[0] for r in rows], [r[1] for r in rows])
    selfs = np.array([segs[si].self_[i] for si, i in picks])
    q10 = np.array([segs[si].q10[i] for si, i in picks])
    sketch = np.stack([np.asarray(segs[si].sketch[i]) for si, i in picks])
    ids = [segs[si].ids[i].decode() for si, i in picks]
    write_segment(path, ids, z, beta, offsets, selfs, q10, sketch, str(segs[0].z.dtype))


def write_built(path: Path, ids: list[str], backend: Any, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray,
                dtype: str, chunk: int = 10_000) -> None:
    """A new segment from raw points: mapped into the kernel's units, then self products, own-density
    quantiles and sketches, ``chunk`` learnwares at a time (from the full-precision mapped points,
    so memory holds one chunk in float64 besides the stored array)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    width = backend.map(np.asarray(z[:1])).shape[1]
    stored = np.empty((int(offsets[-1]), width), dtype=dtype)
    selfs, q10, sketches = np.empty(n), np.empty(n), []
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = int(offsets[a]), int(offsets[b])
        zm, bb, off = backend.map(np.asarray(z[lo:hi])), np.asarray(beta[lo:hi], dtype=np.float64), offsets[a : b + 1] - lo
        selfs[a:b], q10[a:b] = backend.self_products(zm, bb, off)
        sketches.append(backend.sketches(zm, bb, off))
        stored[lo:hi] = zm
    write_segment(path, ids, stored, beta, offsets, selfs, q10, np.concatenate(sketches), dtype)


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def write_segment(path: Path, ids: list[str], z: np.ndarray, beta: np.ndarray, offsets: np.ndarray,
                  selfs: np.ndarray, q10: np.ndarray, sketch: np.ndarray, dtype: str) -> None:
    """Write one immutable segment: under a temporary name, renamed into place when complete."""
    tmp = path.with_name(f".tmp-{path.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _save(tmp / "z.npy", np.ascontiguousarray(z, dtype=dtype))
    _save(tmp / "beta.npy", np.asarray(beta, dtype=dtype))
    _save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    _save(tmp / "self.npy", np.asarray(selfs, dtype=np.float64))
    _save(tmp / "q10.npy", np.asarray(q10, dtype=np.float64))
    _save(tmp / "sketch.npy", np.asarray(sketch, dtype=np.float32))
    _save(tmp / "ids.npy", np.array([i.encode() for i in ids], dtype=bytes))
    os.replace(tmp, path)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
