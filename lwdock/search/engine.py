"""The ranking: one group of the store against the user's spec, for every kernel backend.

1. *User*: the user's raw points mapped into the group kernel's units, ``<u,u>`` under it.
2. *Candidates*: the group's live learnwares, restricted to the ids the semantic filter kept.
3. *Pre-filter* (when the backend's :class:`~lwdock.search.prefilter.Budget` says so): an
   approximate MMD^2 from stored sketches picks ``budget.count(k, pool, n)`` candidates.
4. *Exact pass*: ``MMD^2 = <R,R> - 2<u,R> + <u,u>`` with stored self products and the backend's
   bulk cross products, segment by segment, and ``match = 2<u,R> / (<u,u> + <R,R>)``.
5. *Kept*: the best ``pool`` by MMD^2 and the best ``k`` by match, their rows fetched once, for
   what follows in :mod:`lwdock.search.api`: coverage, the verified re-rank, the mixture.

Every reported MMD^2 is exact; the pre-filter can only change which learnwares are considered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import InputDataError
from . import bulk, idsets, mixture, prefilter, shards
from .blocks import MAPPED_ROWS
from .idsets import Ids
from .prefilter import BOUND_SIGMAS, POOL_SIGMAS
from .scores import match_score
from .segments import stack
from .store import Group
from .user import UserSpec

POOL = 20  # candidates kept by MMD^2 for coverage, verification and the mixture
CHUNK_BYTES = 64 << 20  # points gathered per chunk of the exact pass over a large segment
SKETCH_BLOCK = 1 << 24  # sketch values per block of the pre-filter's product (64 MB of float32)
FIRST_ROUND = 2  # the bounded pre-filter computes this many times max(pool, k) exactly first
WHOLE_PASS = 0.5  # and when its bounds leave more than this share, every candidate in one pass


@dataclass(frozen=True)
class RankOptions:
    k: int = 10
    pool: int = POOL
    prefilter: bool | None = None  # None: the backend's budget decides by the number of candidates
    rerank: int | None = None  # exact re-rank budget after the pre-filter (default: the backend's rule)


@dataclass
class MappedUser:
    """The user's points in the group kernel's units, and ``<u,u>`` under that kernel."""

    z: np.ndarray
    beta: np.ndarray
    self_product: float


@dataclass
class Candidates:
    """The kept candidates, best MMD^2 first, with their rows (kernel units) for the later stages."""

    ids: list[str]
    mmd2: np.ndarray
    selfs: np.ndarray
    cross: np.ndarray
    q10: np.ndarray
    Z: np.ndarray
    B: np.ndarray
    offsets: np.ndarray
    backend: object
    user: MappedUser
    _gram: mixture.Gram | None = field(default=None, repr=False)
    _match: np.ndarray | None = field(default=None, repr=False)

    @property
    def match(self) -> np.ndarray:
        """``match`` of each candidate (computed once: the later stages read it per candidate)."""
        if self._match is None:
            self._match = match_score(self.cross, self.user.self_product, self.selfs)
        return self._match

    @property
    def size(self) -> int:
        return len(self.ids)

    def gram(self) -> mixture.Gram:
        """Their Gram matrix, a row at a time on demand."""
        if self._gram is None:
            self._gram = mixture.Gram(self.selfs, lambda i: self.backend.gram_row(self.Z, self.B, self.offsets, i))
        return self._gram

    def stacked(self, which: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of ``which`` candidates, stacked: points, weights, offsets."""
        rows = [(self.Z[self.offsets[i]:self.offsets[i + 1]], self.B[self.offsets[i]:self.offsets[i + 1]]) for i in which]
        return stack([r[0] for r in rows], [r[1] for r in rows])

    def density(self, points: np.ndarray, power: float, which: np.ndarray | None = None,
                coarse: bool = False) -> np.ndarray:
        """(n_points, n) kernel densities ``f_i(x)`` of the candidates (or ``which`` of them),
        kernel^power (``coarse``: float32 kernel values, far-out densities 0)."""
        Z, B, off = self.stacked(np.arange(self.size) if which is None else np.asarray(which))
        return self.backend.densities(points, Z, B, off, power, coarse)


@dataclass
class StatResult:
    candidates: Candidates
    considered: int
    prefiltered: bool
    spread: float | None  # (median - min) / median of MMD^2 over every considered learnware
    exact: int = 0  # learnwares whose MMD^2 the exact pass computed
    expected_misses: float | None = None  # the fixed budget's: prefilter.expected_misses


@dataclass
class _Pick:
    segment: int
    positions: np.ndarray
    whole: bool  # every row of the segment: no gathering needed


@dataclass
class _Scored:
    segment: np.ndarray  # per candidate
    position: np.ndarray
    mmd2: np.ndarray
    selfs: np.ndarray
    cross: np.ndarray

    def take(self, keep: np.ndarray) -> _Scored:
        return _Scored(self.segment[keep], self.position[keep], self.mmd2[keep], self.selfs[keep], self.cross[keep])


@dataclass
class _Answer:
    """One shard's answer to the exact pass: its best candidates, and every MMD^2 it computed
    (for the spread; only when the pre-filter did not run)."""

    best: _Scored
    mmd2: np.ndarray | None


def map_user(group: Group, user: UserSpec) -> MappedUser:
    z = group.backend.map(user.z)
    uu = float(group.backend.self_product(z, user.beta))
    if not np.isfinite(uu):
        raise InputDataError("the user specification's self inner product is not finite")
    return MappedUser(z, user.beta, uu)


def rank(group: Group, user: UserSpec, allowed: set[str] | Ids | None, opts: RankOptions,
         runner: ShardRunner | None = None) -> StatResult | None:
    """Rank the group's live learnwares (restricted to ``allowed`` ids: a set, or an
    :class:`~lwdock.search.idsets.Ids` that keeps or leaves out its ids) against ``user``; None
    when no learnware is left to rank. Every stage runs per shard of the group
    (:mod:`lwdock.search.shards`) and is merged exactly: the result does not depend on the shards.
    ``runner``: where the shards' rounds run (default: this process's threads; :mod:`lwdock.search.dask_shards`)."""
    runner = runner or LocalShards()
    with bulk.one_blas_thread():
        mapped = map_user(group, user)
        units = _picks(group, allowed)
        considered = _count(units)
        if considered == 0:
            return None
        plan = _prefilter(group, mapped, units, considered, opts, runner)
        answers = runner.exact(group, plan.units, mapped, opts, plan.bounds is None)
        exact = _count(plan.units)
        misses = None
        if plan.computed is not None:  # the fixed budget: how much it may have left out
            misses = prefilter.expected_misses(np.concatenate(plan.computed), np.concatenate([a.mmd2 for a in answers]),
                                               plan.left_out, opts.k)
        if plan.bounds is not None:  # round 3: whatever the first exact answers cannot rule out
            wider = plan.bounds.widen(answers, mapped.self_product, opts)
            if _count(wider) > WHOLE_PASS * considered:  # most of them: one pass, nothing gathered
                answers, exact = runner.exact(group, units, mapped, opts, False), considered
            elif wider:
                answers, exact = answers + runner.exact(group, wider, mapped, opts, False), exact + _count(wider)
        approx, prefiltered = plan.approx, plan.approx is not None
        best = _Scored(*(np.concatenate(col) for col in zip(*(_columns(a.best) for a in answers))))
        spread = relative_spread(approx if approx is not None else np.concatenate([a.mmd2 for a in answers]))
        keep = shards.merge(best.mmd2, match_score(best.cross, mapped.self_product, best.selfs), opts.pool, opts.k)
        return StatResult(_candidates(group, mapped, best, keep), considered, prefiltered, spread, exact, misses)


def _count(units: list[Unit]) -> int:
    return int(sum(p.positions.size for _, unit in units for p in unit))


Unit = tuple[int, list[_Pick]]  # (shard index, the picks of its segments)


class ShardRunner(Protocol):
    """Runs a round of a query on every shard's unit and returns the answers in unit order."""

    def approx(self, group: Group, units: list[Unit], us: np.ndarray, bounded: bool = False) -> list[np.ndarray]: ...

    def exact(self, group: Group, units: list[Unit], user: MappedUser, opts: RankOptions,
              keep_all: bool) -> list[_Answer]: ...


class LocalShards:
    """The rounds on this process's threads (:func:`lwdock.search.shards.run`)."""

    def approx(self, group: Group, units: list[Unit], us: np.ndarray, bounded: bool = False) -> list[np.ndarray]:
        return shards.run(lambda unit: shard_approx(group, unit[1], us, bounded), units)

    def exact(self, group: Group, units: list[Unit], user: MappedUser, opts: RankOptions,
              keep_all: bool) -> list[_Answer]:
        return shards.run(lambda unit: shard_exact(group, user, unit[1], opts, keep_all), units)


def shard_approx(group: Group, unit: list[_Pick], us: np.ndarray, bounded: bool = False) -> np.ndarray:
    """Round 1 on one shard: the approximate MMD^2 of its picked learnwares, in pick order
    (``bounded``: a (3, n) array instead, their self products, sketched ``<u,R>`` and its standard error)."""
    if bounded:
        return np.concatenate([_approx_bounded(group, p, us) for p in unit], axis=1)
    return np.concatenate([_approx(group, p, us) for p in unit])


def _columns(s: _Scored) -> tuple[np.ndarray, ...]:
    return s.segment, s.position, s.mmd2, s.selfs, s.cross


def relative_spread(mmd2: np.ndarray) -> float | None:
    """``(median - min) / median``: near 0 when the kernel cannot tell the learnwares apart."""
    d = np.asarray(mmd2, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 4:
        return None
    med = float(np.median(d))
    return (med - float(d.min())) / med if med > 0 else 0.0


def _candidates(group: Group, user: MappedUser, scored: _Scored, keep: np.ndarray) -> Candidates:
    rows = [group.segments[int(scored.segment[j])].rows(int(scored.position[j])) for j in keep]
    Z, B, offs = stack([r[0] for r in rows], [r[1] for r in rows])
    q10 = np.array([group.segments[int(scored.segment[j])].q10[int(scored.position[j])] for j in keep])
    return Candidates([_ident(group, scored, int(j)) for j in keep], scored.mmd2[keep], scored.selfs[keep],
                      scored.cross[keep], q10, Z, B, offs, group.backend, user)


# The last picks made, with the group and restriction they were made for (the search API hands
# back the same restriction object for the same dock state and filters): (group, allowed, units).
_last_picks: list[tuple[Group, Any, list[Unit]]] = []


def _picks(group: Group, allowed: set[str] | Ids | None) -> list[Unit]:
    """Per shard, the live (and allowed) rows of each of its segments (never changed by a search:
    the same object again for the same group and restriction)."""
    last = _last_picks[0] if _last_picks else None
    if last is not None and last[0] is group and last[1] is allowed and not isinstance(allowed, set):
        return last[2]
    units = _make_picks(group, allowed)
    _last_picks[:] = [(group, allowed, units)]
    return units


def _make_picks(group: Group, allowed: set[str] | Ids | None) -> list[Unit]:
    ids = Ids.of(allowed) if isinstance(allowed, (set, frozenset, list)) else allowed
    lives = [s.live for s in group.segments]
    masks = lives if ids is None else idsets.masks(lives, group.id_index(), ids)
    units = []
    for index, shard in enumerate(group.shards):
        picks = []
        for si in shard:
            seg = group.segments[si]
            pos = np.nonzero(masks[si])[0]
            if pos.size:
                picks.append(_Pick(si, pos, pos.size == seg.ids.size))
        if picks:
            units.append((index, picks))
    return units


@dataclass
class _Plan:
    """What the exact pass computes first, and what the pre-filter left for it to know."""

    units: list[Unit]
    approx: np.ndarray | None = None  # every considered learnware's approximate MMD^2 (None: not pre-filtered)
    bounds: _Bounds | None = None  # the bounded pre-filter's, for the round after the first exact answers
    computed: list[np.ndarray] | None = None  # the fixed budget's: approximate MMD^2 of each unit's kept, in order
    left_out: np.ndarray | None = None  # and of every candidate it left out


@dataclass
class _Bounds:
    """Per unit, each candidate's approximate MMD^2, the standard error of its sketched cross term,
    the most its match could be, and which candidates the first exact round already computed."""

    units: list[Unit]
    approx: list[np.ndarray]
    se: list[np.ndarray]
    highest_match: list[np.ndarray]
    first: list[np.ndarray]

    def widen(self, answers: list[_Answer], uu: float, opts: RankOptions) -> list[Unit]:
        """The candidates not yet computed that could still enter the best ``k`` by MMD^2 or by
        match (BOUND_SIGMAS standard errors in their favour) or the rest of the best ``pool`` by
        MMD^2 (POOL_SIGMAS): those whose bound reaches the first round's exact ``k``-th / ``pool``-th."""
        mmd2 = np.sort(np.concatenate([a.best.mmd2 for a in answers]))
        match = match_score(np.concatenate([a.best.cross for a in answers]), uu,
                            np.concatenate([a.best.selfs for a in answers]))
        kth = mmd2[opts.k - 1] if mmd2.size >= opts.k else np.inf
        pooled = mmd2[opts.pool - 1] if mmd2.size >= opts.pool else np.inf
        worst_match = -np.sort(-match)[opts.k - 1] if match.size >= opts.k else -np.inf
        out = []
        for (index, unit), a, se, high, done in zip(self.units, self.approx, self.se, self.highest_match, self.first):
            need = (a - 2.0 * BOUND_SIGMAS * se <= kth) | (a - 2.0 * POOL_SIGMAS * se <= pooled) | (high >= worst_match)
            need[done] = False
            kept = _restrict(unit, np.nonzero(need)[0])
            if kept:
                out.append((index, kept))
        return out


def _prefilter(group: Group, user: MappedUser, units: list[Unit], n: int, opts: RankOptions,
               runner: ShardRunner) -> _Plan:
    budget = group.backend.budget
    if opts.rerank is None and budget.bounded(opts.prefilter, n, getattr(group.backend, "n_frequencies", 0)):
        return _bounded(group, user, units, opts, runner)
    count = min(n, int(opts.rerank)) if opts.rerank else budget.count(opts.k, opts.pool, n)
    if not budget.applies(opts.prefilter, n) or count >= n:
        return _Plan(units)
    us = group.backend.user_sketch(user.z, user.beta)
    approx = [a + user.self_product for a in runner.approx(group, units, us)]
    chosen = shards.select(approx, count)  # exactly the group's `count` smallest, whatever the shards
    kept = [(index, _restrict(unit, keep), a[keep]) for (index, unit), keep, a in zip(units, chosen, approx)]
    left = [np.delete(a, keep) for a, keep in zip(approx, chosen)]
    return _Plan([(i, u) for i, u, _ in kept if u], np.concatenate(approx),
                 computed=[a for _, u, a in kept if u], left_out=np.concatenate(left))


def _bounded(group: Group, user: MappedUser, units: list[Unit], opts: RankOptions, runner: ShardRunner) -> _Plan:
    """The bounded pre-filter: the best ``2 max(pool, k)`` by sketch go to the exact pass first;
    then every candidate whose sketch, BOUND_SIGMAS standard errors in its favour, could still beat
    what that pass found (:meth:`_Bounds.widen`). Misses need a sketch error past that margin."""
    uu = user.self_product
    parts = runner.approx(group, units, group.backend.user_sketch(user.z, user.beta), bounded=True)
    approx = [selfs - 2.0 * cross + uu for selfs, cross, _ in parts]
    highest = [match_score(cross + BOUND_SIGMAS * se, uu, selfs) for selfs, cross, se in parts]
    first = shards.select(approx, int(FIRST_ROUND * max(opts.pool, opts.k)))
    kept = [(index, _restrict(unit, keep)) for (index, unit), keep in zip(units, first)]
    return _Plan([u for u in kept if u[1]], np.concatenate(approx),
                 _Bounds(units, approx, [p[2] for p in parts], highest, first))


def _restrict(unit: list[_Pick], keep: np.ndarray) -> list[_Pick]:
    """A shard's picks reduced to ``keep`` (positions into its concatenated candidates)."""
    bounds = np.cumsum([0] + [p.positions.size for p in unit])
    out = [_Pick(p.segment, p.positions[keep[(keep >= lo) & (keep < hi)] - lo], False)
           for p, lo, hi in zip(unit, bounds[:-1], bounds[1:])]
    return [p for p in out if p.positions.size]


def _approx(group: Group, p: _Pick, us: np.ndarray) -> np.ndarray:
    """Approximate MMD^2 of the picked learnwares of one segment. The sketches are read through
    their memory map, at any size (1 KB per learnware: 1 GB at 1,000,000, within a cold search's
    memory; a copy through ``pread`` cost more than the product itself), in blocks."""
    seg = group.segments[p.segment]
    if not (p.whole or 4 * p.positions.size > seg.ids.size):  # a gather beats a pass over every sketch
        return group.backend.approx(seg.self_[p.positions], seg.sketch[p.positions], us)
    n = seg.ids.size
    rows = max(1, SKETCH_BLOCK // max(1, seg.sketch.shape[1]))
    out = np.concatenate([group.backend.approx(seg.self_[s : s + rows], seg.sketch[s : s + rows], us)
                          for s in range(0, n, rows)]) if n > rows else group.backend.approx(seg.self_, seg.sketch, us)
    return out if p.whole else out[p.positions]


def _approx_bounded(group: Group, p: _Pick, us: np.ndarray) -> np.ndarray:
    """(3, n): self products, sketched ``<u,R>`` and its standard error of one segment's picks
    (the bounded pre-filter serves groups of at most ``Budget.auto_above``: no blocks needed)."""
    seg = group.segments[p.segment]
    sq = group.sketch_squares(p.segment)
    if p.whole or 4 * p.positions.size > seg.ids.size:  # one pass over every sketch beats a gather
        cross, se = group.backend.approx_bounded(seg.sketch, sq, us)
        cross, se = (cross, se) if p.whole else (cross[p.positions], se[p.positions])
    else:
        cross, se = group.backend.approx_bounded(seg.sketch[p.positions], sq[p.positions], us)
    return np.stack([seg.self_[p.positions], cross, se])


def _cross(group: Group, user: MappedUser, p: _Pick) -> np.ndarray:
    """``<u, R>`` of the picked learnwares of one segment: from its mapped arrays when the segment
    is small, else gathered in bounded chunks with ``pread`` (a large segment is never mapped whole)."""
    seg = group.segments[p.segment]
    if p.whole and seg.ids.size <= MAPPED_ROWS:
        return group.backend.cross(seg.z, seg.beta, seg.offsets, user.z, user.beta)
    if seg.ids.size <= MAPPED_ROWS:  # a small segment is mapped whole anyway: gather through the map
        return group.backend.cross(*seg.gather(p.positions), user.z, user.beta)
    # a gather never goes through the map: a fault can map a whole large folio of the page cache
    # (measured: 1,200 learnwares gathered from a 50,000-learnware map made 595 MB resident)
    files = group.files[p.segment]
    zf, bf = files["z"], files["beta"]
    per = max(1, CHUNK_BYTES // max(1, zf.row_bytes))  # rows of points per chunk
    starts, lens = seg.offsets[p.positions], np.diff(seg.offsets)[p.positions]
    zbuf = np.empty((min(per, int(lens.sum())) + int(lens.max()), *zf.shape[1:]), dtype=zf.dtype)
    bbuf = np.empty(zbuf.shape[0], dtype=bf.dtype)
    out = np.empty(p.positions.size)
    ends = np.cumsum(lens)
    a = 0
    while a < p.positions.size:
        b = max(a + 1, int(np.searchsorted(ends, (ends[a - 1] if a else 0) + per, side="right")))
        z = zf.gather(starts[a:b], lens[a:b], zbuf)
        beta = bf.gather(starts[a:b], lens[a:b], bbuf)
        out[a:b] = group.backend.cross(z, beta, np.concatenate([[0], np.cumsum(lens[a:b])]), user.z, user.beta)
        a = b
    return out


def shard_exact(group: Group, user: MappedUser, unit: list[_Pick], opts: RankOptions, keep_all: bool) -> _Answer:
    """Round 2 on one shard: its exact pass and its best candidates (every MMD^2 too when ``keep_all``)."""
    uu = user.self_product
    parts = []
    for p in unit:
        seg = group.segments[p.segment]
        cross = _cross(group, user, p)
        selfs = seg.self_[p.positions]
        parts.append((np.full(p.positions.size, p.segment), p.positions, np.maximum(selfs - 2.0 * cross + uu, 0.0),
                      selfs, cross))
    scored = _Scored(*(np.concatenate(col) for col in zip(*parts)))
    best = shards.local_best(scored.mmd2, match_score(scored.cross, uu, scored.selfs), opts.pool, opts.k)
    return _Answer(scored.take(best), scored.mmd2 if keep_all else None)


def _ident(group: Group, scored: _Scored, j: int) -> str:
    return str(group.segments[int(scored.segment[j])].ids[int(scored.position[j])].decode())


smallest = shards.smallest  # noqa: E305 - kept importable from here
