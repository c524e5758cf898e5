"""Shards of a search-store group: independent sets of segments, searched in parallel, merged exactly.

A group's segments are split into *shards* (``shards`` in the group's manifest entry: lists of
segment names; a group without it is one shard). Each shard is a unit that one worker can own:
its segments' ids, points, self products and sketches, nothing shared with the others but the
group's kernel. :func:`lwdock.search.engine.rank` runs every stage of a query per shard and
merges here, so one code path serves one shard (small docks) and many (large groups):

1. *Pre-filter* (when it runs). Each shard scores its candidates by the sketches and reports its
   ``count`` smallest approximate values; the coordinator takes the ``count``-th smallest of
   those (the cut: every global top-``count`` value is within some shard's own top ``count``)
   and the shards keep their candidates below it, ties at the cut by a quota given out in shard
   order (:func:`select`). The kept set is exactly the one a single scan of the group keeps.
2. *Exact pass*. Each shard computes exact ``MMD^2`` for what it kept and returns its own best
   ``pool`` by MMD^2 and best ``k`` by match (:func:`local_best`). Values are exact, so the
   global best of either kind is within the union of the shards' (:func:`merge`), and the
   mixture then runs on the merged candidates' exact products.

Shards run on :func:`run`'s threads (numpy releases the GIL in BLAS and ufuncs), one BLAS and
one numpy thread each; a distributed engine can run the same two calls per shard on workers
that own them (docs/scaling.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from . import bulk

# a group's shard holds at most this many learnwares (bulk loads fill shards to it; appends
# open a new shard once every shard is full); 4 shards at 1,000,000 table learnwares
SHARD_ROWS = 250_000
WORKERS = max(1, min(4, os.cpu_count() or 1))

T = TypeVar("T")
R = TypeVar("R")
_POOL: ThreadPoolExecutor | None = None


def layout(meta: dict[str, Any]) -> list[list[str]]:
    """The group's shards as lists of segment names (one shard when the manifest names none)."""
    segs = list(meta.get("segments", []))
    named = meta.get("shards")
    if not named:
        return [segs] if segs else []
    listed = [n for s in named for n in s]
    if sorted(listed) != sorted(segs):  # a manifest written without shard bookkeeping: one shard
        return [segs]
    return [list(s) for s in named if s]


def indices(meta: dict[str, Any]) -> list[list[int]]:
    """The shards as positions into the group's segment list (the order segments are opened in)."""
    pos = {n: i for i, n in enumerate(meta.get("segments", []))}
    return [[pos[n] for n in s] for s in layout(meta)]


def run(fn: Callable[[T], R], units: Sequence[T]) -> list[R]:
    """``fn`` on every shard's unit, in parallel threads when there is more than one."""
    if len(units) <= 1:
        return [fn(u) for u in units]
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(WORKERS, thread_name_prefix="lwdock-shard")

    def task(unit: T) -> R:
        with bulk.threads(1):  # the shards are the split: one thread each
            return fn(unit)

    return list(_POOL.map(task, units))


# -- the pre-filter's cut -----------------------------------------------------------------------
def smallest_values(approx: np.ndarray, count: int) -> np.ndarray:
    """What a shard reports for the cut: its ``count`` smallest approximate values."""
    if count >= approx.size:
        return np.asarray(approx)
    return np.partition(approx, count - 1)[:count]


def select(parts: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """Per shard, the positions (into its approximate values) of the group's ``count`` smallest
    values: everything below the cut, then ties at the cut in shard order, then position order."""
    total = sum(p.size for p in parts)
    if count >= total:
        return [np.arange(p.size) for p in parts]
    reported = np.concatenate([smallest_values(p, count) for p in parts])
    cut = np.partition(reported, count - 1)[count - 1]
    below = [np.nonzero(p < cut)[0] for p in parts]
    quota = count - sum(b.size for b in below)
    out = []
    for p, b in zip(parts, below):
        ties = np.nonzero(p == cut)[0][: max(quota, 0)]
        quota -= ties.size
        out.append(np.sort(np.concatenate([b, ties])) if ties.size else b)
    return out


# -- the exact pass's merge ---------------------------------------------------------------------
def smallest(d: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest finite values, ascending (ties: lower position first)."""
    finite = np.nonzero(np.isfinite(d))[0]
    if count < finite.size:
        part = np.argpartition(d[finite], count - 1)[:count]
        # keep every value equal to the cut so ties resolve by position, as a stable sort would
        cut = d[finite][part].max()
        finite = finite[d[finite] <= cut]
    return finite[np.argsort(d[finite], kind="stable")][:count]


def local_best(mmd2: np.ndarray, match: np.ndarray, pool: int, k: int) -> np.ndarray:
    """Positions of the best ``pool`` by MMD^2 and the best ``k`` by match (a shard's answer, and
    the merged answer), in position order."""
    keep = np.union1d(smallest(mmd2, pool), smallest(-match, k))
    return keep.astype(np.int64)


def merge(mmd2: np.ndarray, match: np.ndarray, pool: int, k: int) -> np.ndarray:
    """The kept candidates of the shards' concatenated answers: the best ``pool`` by MMD^2, then
    the best ``k`` by match that are not among them, ordered by (MMD^2, position)."""
    by_mmd = smallest(mmd2, pool).tolist()
    seen = set(by_mmd)
    keep = by_mmd + [j for j in smallest(-match, k).tolist() if j not in seen]
    return np.array(sorted(keep, key=lambda j: (mmd2[j], j)), dtype=np.int64)
