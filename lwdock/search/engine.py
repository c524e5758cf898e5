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

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputDataError
from . import bulk, escalate, mixture
from .scores import match_score
from .segments import Segment, stack
from .store import Group
from .user import UserSpec

POOL = 20  # candidates kept by MMD^2 for coverage, verification and the mixture


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

    @property
    def match(self) -> np.ndarray:
        return match_score(self.cross, self.user.self_product, self.selfs)

    @property
    def size(self) -> int:
        return len(self.ids)

    def gram(self) -> mixture.Gram:
        """Their Gram matrix, a row at a time on demand."""
        if self._gram is None:
            self._gram = mixture.Gram(self.selfs, lambda i: self.backend.gram_row(self.Z, self.B, self.offsets, i))
        return self._gram

    def density(self, points: np.ndarray, power: float, which: np.ndarray | None = None) -> np.ndarray:
        """(n_points, n) kernel densities ``f_i(x)`` of the candidates (or ``which`` of them), kernel^power."""
        sel = np.arange(self.size) if which is None else np.asarray(which)
        rows = [(self.Z[self.offsets[i]:self.offsets[i + 1]], self.B[self.offsets[i]:self.offsets[i + 1]]) for i in sel]
        Z, B, off = stack([r[0] for r in rows], [r[1] for r in rows])
        return self.backend.densities(points, Z, B, off, power)


@dataclass
class StatResult:
    candidates: Candidates
    considered: int
    prefiltered: bool
    spread: float | None  # (median - min) / median of MMD^2 over every considered learnware


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


def map_user(group: Group, user: UserSpec) -> MappedUser:
    z = group.backend.map(user.z)
    uu = float(group.backend.self_product(z, user.beta))
    if not np.isfinite(uu):
        raise InputDataError("the user specification's self inner product is not finite")
    return MappedUser(z, user.beta, uu)


def rank(group: Group, user: UserSpec, allowed: set[str] | None, opts: RankOptions) -> StatResult | None:
    """Rank the group's live learnwares (restricted to ``allowed`` ids) against ``user``; None
    when no learnware is left to rank."""
    with bulk.one_blas_thread():
        mapped = map_user(group, user)
        picks = _picks(group, allowed)
        considered = int(sum(p.positions.size for p in picks))
        if considered == 0:
            return None
        picks, prefiltered, approx, scored = _prefiltered_exact(group, mapped, picks, considered, opts)
        spread = relative_spread(approx if approx is not None else scored.mmd2)
        by_mmd = smallest(scored.mmd2, opts.pool)
        match = match_score(scored.cross, mapped.self_product, scored.selfs)
        by_match = smallest(-match, opts.k)
        keep = by_mmd.tolist() + [j for j in by_match.tolist() if j not in set(by_mmd.tolist())]
        keep = sorted(keep, key=lambda j: (scored.mmd2[j], j))
        return StatResult(_candidates(group, mapped, scored, np.array(keep, dtype=np.int64)), considered,
                          prefiltered, spread)


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


def _picks(group: Group, allowed: set[str] | None) -> list[_Pick]:
    allowed_arr = np.array(sorted(a.encode() for a in allowed), dtype=bytes) if allowed is not None else None
    picks = []
    for si, seg in enumerate(group.segments):
        mask = seg.live if allowed_arr is None else seg.live & _members(seg.ids, allowed_arr)
        pos = np.nonzero(mask)[0]
        if pos.size:
            picks.append(_Pick(si, pos, pos.size == seg.ids.size))
    return picks


def _members(ids: np.ndarray, sorted_allowed: np.ndarray) -> np.ndarray:
    """``np.isin(ids, sorted_allowed)`` by binary search: isin on byte strings goes through
    np.unique, whose first call imports numpy's string module (~30 ms of a cold search)."""
    if sorted_allowed.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_allowed, ids), sorted_allowed.size - 1)
    return sorted_allowed[at] == ids


def _prefiltered_exact(group: Group, user: MappedUser, picks: list[_Pick], n: int, opts: RankOptions
                       ) -> tuple[list[_Pick], bool, np.ndarray | None, _Scored]:
    """The exact pass, over every candidate or (pre-filter) over those the sketches rank best,
    widened until :func:`lwdock.search.escalate.more_needed` says nothing left out can matter (a fixed
    ``opts.rerank`` budget is taken as given: benchmarks and tests measure it)."""
    budget = group.backend.budget
    count = min(n, int(opts.rerank)) if opts.rerank else budget.count(opts.k, opts.pool, n)
    if not budget.applies(opts.prefilter, n) or count >= n:
        return picks, False, None, _exact(group, user, picks)
    us = group.backend.user_sketch(user.z, user.beta)
    approx = np.concatenate([_approx(group, p, us) for p in picks]) + user.self_product
    while True:
        sel = escalate.select(approx, count) if not opts.rerank else _fixed(approx, count)
        kept = _restrict(picks, sel.keep)
        scored = _exact(group, user, kept)
        more = 0 if opts.rerank else escalate.more_needed(approx, sel, scored.mmd2, max(opts.k, opts.pool))
        if more == 0:
            return kept, True, approx, scored
        count = escalate.next_count(count, more, n)


def _fixed(approx: np.ndarray, count: int) -> escalate.Selection:
    keep = np.sort(np.argpartition(approx, count - 1)[:count])  # store order, so ties break as without it
    return escalate.Selection(keep, keep[:0], float("inf"))


def _restrict(picks: list[_Pick], keep: np.ndarray) -> list[_Pick]:
    """The picks narrowed to ``keep`` (sorted positions into the concatenated picks)."""
    bounds = np.cumsum([0] + [p.positions.size for p in picks])
    out = []
    for p, lo, hi in zip(picks, bounds[:-1], bounds[1:]):
        mine = keep[(keep >= lo) & (keep < hi)] - lo
        if mine.size == p.positions.size:
            out.append(p)  # all of it (a widened pass): the segment's arrays as they are, no gather
        elif mine.size:
            out.append(_Pick(p.segment, p.positions[mine], False))
    return out


def _approx(group: Group, p: _Pick, us: np.ndarray) -> np.ndarray:
    seg = group.segments[p.segment]
    if p.whole or 4 * p.positions.size > seg.ids.size:  # one pass over the mapped sketches beats a gather
        return group.backend.approx(seg.self_, seg.sketch, us)[p.positions]
    return group.backend.approx(seg.self_[p.positions], seg.sketch[p.positions], us)


def _gather(seg: Segment, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the selected learnwares of one segment, stacked, with new offsets."""
    off = seg.offsets
    starts, lens = off[sel], off[sel + 1] - off[sel]
    new_off = np.concatenate([[0], np.cumsum(lens)])
    rows = np.repeat(starts - new_off[:-1], lens) + np.arange(int(new_off[-1]))
    return seg.z[rows], seg.beta[rows], new_off


def _exact(group: Group, user: MappedUser, picks: list[_Pick]) -> _Scored:
    uu = user.self_product
    parts = []
    for p in picks:
        seg = group.segments[p.segment]
        z, beta, off = (seg.z, seg.beta, seg.offsets) if p.whole else _gather(seg, p.positions)
        cross = group.backend.cross(z, beta, off, user.z, user.beta)
        selfs = seg.self_[p.positions]
        parts.append((np.full(p.positions.size, p.segment), p.positions, np.maximum(selfs - 2.0 * cross + uu, 0.0),
                      selfs, cross))
    return _Scored(*(np.concatenate(col) for col in zip(*parts)))


def _ident(group: Group, scored: _Scored, j: int) -> str:
    return str(group.segments[int(scored.segment[j])].ids[int(scored.position[j])].decode())


def smallest(d: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest finite values, ascending (ties: lower position first)."""
    finite = np.nonzero(np.isfinite(d))[0]
    if count < finite.size:
        part = np.argpartition(d[finite], count - 1)[:count]
        # keep every value equal to the cut so ties resolve by position, as a stable sort would
        cut = d[finite][part].max()
        finite = finite[d[finite] <= cut]
    return finite[np.argsort(d[finite], kind="stable")][:count]
