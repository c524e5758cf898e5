"""Which stored learnwares a search may rank, as arrays: no Python set of a million ids.

The semantic filter keeps rows of the summary; the store holds ids per segment. When the
filter keeps most of a large group (e.g. every ``usable`` learnware of a million, leaving out
the semantic-only ones), the caller passes the few it left out (:class:`Ids` with
``keep=False``), and each segment answers membership by binary search over a sorted 64-bit
key of its ids (built once per opened group, O(N log N) in numpy), then compares the bytes of
every hit, so a key collision can never admit or drop a learnware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

_MUL = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Ids:
    """Ids as a bytes array: rank only these (``keep``) or everything but these."""

    ids: np.ndarray  # S
    keep: bool = True

    @classmethod
    def of(cls, ids: Iterable[str], keep: bool = True) -> Ids:
        return cls(np.array(sorted({i.encode() for i in ids}), dtype=bytes), keep)

    def __sub__(self, other: Iterable[str]) -> Ids:
        """These ids less ``other`` (``allowed - heterogeneous`` in the search API)."""
        other = {i.encode() if isinstance(i, str) else i for i in other}
        if self.keep:
            return Ids(np.array([x for x in self.ids.tolist() if x not in other], dtype=bytes), True)
        return Ids(np.array(sorted(set(self.ids.tolist()) | other), dtype=bytes), False)

    def __len__(self) -> int:
        return int(self.ids.size)


def restriction(rows: Any, kept: Any) -> set[str] | Ids:
    """What the semantic filter kept of ``rows`` (a row source), described the cheaper way: the ids
    of the rows it left out when they are fewer (array selections: the summary), else the kept ids."""
    if not isinstance(kept, np.ndarray):
        return set(rows.ids(kept))
    every = np.asarray(rows.start(), dtype=np.int64)
    inside = np.zeros(int(max(every.max(initial=-1), kept.max(initial=-1))) + 1, dtype=bool)
    inside[kept] = True
    left_out = every[~inside[every]]
    keep = left_out.size >= kept.size
    sel = kept if keep else left_out
    id_array = getattr(rows, "id_array", None)
    ids = id_array(sel) if callable(id_array) else np.array([i.encode() for i in rows.ids(sel)], dtype=bytes)
    return Ids(np.unique(ids), keep)


def keys(ids: np.ndarray) -> np.ndarray:
    """A 64-bit key per id of a bytes array (its bytes mixed word by word; NUL padding counts)."""
    a = np.ascontiguousarray(ids)
    n, width = a.size, a.dtype.itemsize
    u = a.view(np.uint8).reshape(n, width)
    pad = (-width) % 8
    if pad:
        u = np.concatenate([u, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    words = np.ascontiguousarray(u).view("<u8")
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h ^= words[:, j]
            h *= _MUL
            h ^= h >> np.uint64(29)
    return h


@dataclass
class SortedIds:
    """One segment's ids, searchable by key."""

    ids: np.ndarray
    order: np.ndarray
    sorted_keys: np.ndarray

    @classmethod
    def build(cls, ids: np.ndarray) -> SortedIds:
        k = keys(ids)
        order = np.argsort(k, kind="stable")
        return cls(ids, order, k[order])

    def positions(self, query: np.ndarray) -> np.ndarray:
        """Positions (into the segment) of the ``query`` ids it holds."""
        if query.size == 0 or self.ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        if query.dtype.itemsize > self.ids.dtype.itemsize:  # ids longer than any stored one are not stored
            query = query[np.char.str_len(query) <= self.ids.dtype.itemsize]
        k = keys(query.astype(self.ids.dtype))
        at = np.minimum(np.searchsorted(self.sorted_keys, k), self.sorted_keys.size - 1)
        hit = self.sorted_keys[at] == k
        pos = self.order[at[hit]]
        same = self.ids[pos] == query[hit]
        if not same.all() or _duplicate_keys(self.sorted_keys, k[hit]):  # a key collision: the exact way
            return np.nonzero(np.isin(self.ids, query))[0]
        return np.sort(pos)


def _duplicate_keys(sorted_keys: np.ndarray, wanted: np.ndarray) -> bool:
    """Whether any wanted key appears more than once among the stored keys."""
    lo = np.searchsorted(sorted_keys, wanted, side="left")
    hi = np.searchsorted(sorted_keys, wanted, side="right")
    return bool(np.any(hi - lo > 1))


def mask(live: np.ndarray, index: SortedIds, allowed: Ids) -> np.ndarray:
    """The segment's rows a search may rank: live and (not) among ``allowed``."""
    pos = index.positions(allowed.ids)
    if allowed.keep:
        out = np.zeros_like(live)
        out[pos] = True
        return out & live
    out = live.copy()
    out[pos] = False
    return out
