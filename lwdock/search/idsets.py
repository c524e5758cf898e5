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
    """A group's ids over all its segments, searchable by key: one sorted array of 64-bit keys
    (built once per opened group), so a restriction costs one binary search of its ids, not one
    per segment."""

    segments: list[np.ndarray]  # each segment's ids
    seg_of: np.ndarray  # per sorted key: its segment
    pos_of: np.ndarray  # per sorted key: its row in the segment
    sorted_keys: np.ndarray
    collisions: bool  # two stored ids share a key: answer by np.isin instead

    @classmethod
    def build(cls, segments: list[np.ndarray]) -> SortedIds:
        width = max((s.dtype.itemsize for s in segments), default=1)
        k = np.concatenate([keys(_width(s, width)) for s in segments]) if segments else np.zeros(0, np.uint64)
        seg_of = np.repeat(np.arange(len(segments)), [s.size for s in segments])
        pos_of = np.concatenate([np.arange(s.size) for s in segments]) if segments else np.zeros(0, np.int64)
        order = np.argsort(k)  # equal keys make `collisions` true, so their order never matters
        sk = k[order]
        return cls(list(segments), seg_of[order], pos_of[order], sk, bool(np.any(sk[1:] == sk[:-1])))

    def positions(self, query: np.ndarray) -> list[np.ndarray]:
        """Per segment, the positions of the ``query`` ids it holds (ascending)."""
        empty = [np.zeros(0, dtype=np.int64) for _ in self.segments]
        if query.size == 0 or self.sorted_keys.size == 0:
            return empty
        width = max(s.dtype.itemsize for s in self.segments)
        if query.dtype.itemsize > width:  # ids longer than any stored one are not stored
            query = query[np.char.str_len(query) <= width]
        if self.collisions:
            return [np.nonzero(np.isin(s, query))[0] for s in self.segments]
        k = keys(_width(query, width))
        at = np.minimum(np.searchsorted(self.sorted_keys, k), self.sorted_keys.size - 1)
        hit = self.sorted_keys[at] == k
        seg, pos, q = self.seg_of[at[hit]], self.pos_of[at[hit]], query[hit]
        out = []
        for i, ids in enumerate(self.segments):
            mine = seg == i
            p = pos[mine]
            out.append(np.sort(p[ids[p] == q[mine]]))  # the bytes, not only the key
        return out


def _width(ids: np.ndarray, width: int) -> np.ndarray:
    return ids if ids.dtype.itemsize == width else ids.astype(f"S{width}")


def masks(lives: list[np.ndarray], index: SortedIds, allowed: Ids) -> list[np.ndarray]:
    """Per segment, the rows a search may rank: live and (not) among ``allowed``."""
    out = []
    for live, pos in zip(lives, index.positions(allowed.ids)):
        if allowed.keep:
            m = np.zeros_like(live)
            m[pos] = True
            out.append(m & live)
        else:
            m = live.copy()
            m[pos] = False
            out.append(m)
    return out
