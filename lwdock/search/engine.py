"""The ranking: one group of the store against the user's spec, for every kernel backend.

1. *Candidates*: the group's live learnwares, restricted to the ids the semantic filter kept.
2. *Pre-filter* (when the backend's :class:`~lwdock.search.prefilter.Budget` says so): an
   approximate MMD^2 from stored sketches picks ``budget.count(k, max_mixture, n)`` candidates.
3. *Exact pass*: ``MMD^2 = <R,R> - 2<u,R> + <u,u>`` with stored self products and the backend's
   bulk cross products, segment by segment; the top ``k`` by MMD^2 (ties: store order).
4. *Mixture*: over the exact top ``max_mixture^2`` (:mod:`lwdock.search.mixture`), with the
   cross products from step 3 and Gram rows computed only for candidates that join.

Every reported MMD^2 is exact; the pre-filter can only change which learnwares are considered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bulk, mixture
from .store import Group, Segment, stack
from .user import UserSpec


@dataclass(frozen=True)
class RankOptions:
    k: int = 10
    max_mixture: int = 5
    method: str = "greedy"
    prefilter: bool | None = None  # None: the backend's budget decides by the number of candidates
    rerank: int | None = None  # exact re-rank budget after the pre-filter (default: the backend's rule)


@dataclass
class MixtureFound:
    ids: list[str]
    weights: np.ndarray
    mmd2: float
    self_product: float  # <sum w R, sum w R>, for the score


@dataclass
class StatResult:
    ids: list[str]  # top k, best first
    mmd2: np.ndarray
    self_products: np.ndarray
    user_self: float
    considered: int
    prefiltered: bool
    mixture: MixtureFound | None = None


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


def rank(group: Group, user: UserSpec, allowed: set[str] | None, opts: RankOptions) -> StatResult:
    """Rank the group's live learnwares (restricted to ``allowed`` ids) against ``user``."""
    with bulk.one_blas_thread():
        picks = _picks(group, allowed)
        considered = int(sum(p.positions.size for p in picks))
        if considered == 0:
            return StatResult([], np.zeros(0), np.zeros(0), user.self_product, 0, False)
        picks, prefiltered = _prefilter(group, user, picks, considered, opts)
        scored = _exact(group, user, picks)
        n_cand = max(2, opts.max_mixture**2) if opts.max_mixture >= 2 else 0
        order = smallest(scored.mmd2, max(opts.k, n_cand))
        top = order[: opts.k]
        result = StatResult([_ident(group, scored, j) for j in top], scored.mmd2[top], scored.selfs[top],
                            user.self_product, considered, prefiltered)
        result.mixture = _mixture(group, user, scored, order[:n_cand], opts)
        return result


def _picks(group: Group, allowed: set[str] | None) -> list[_Pick]:
    allowed_arr = np.array(sorted(a.encode() for a in allowed), dtype=bytes) if allowed is not None else None
    picks = []
    for si, seg in enumerate(group.segments):
        mask = seg.live if allowed_arr is None else seg.live & np.isin(seg.ids, allowed_arr)
        pos = np.nonzero(mask)[0]
        if pos.size:
            picks.append(_Pick(si, pos, pos.size == seg.ids.size))
    return picks


def _prefilter(group: Group, user: UserSpec, picks: list[_Pick], n: int, opts: RankOptions) -> tuple[list[_Pick], bool]:
    budget = group.backend.budget
    count = min(n, int(opts.rerank)) if opts.rerank else budget.count(opts.k, opts.max_mixture, n)
    if not budget.applies(opts.prefilter, n) or count >= n:
        return picks, False
    us = group.backend.user_sketch(user.z, user.beta)
    approx = np.concatenate([_approx(group, p, us) for p in picks])
    keep = np.sort(np.argpartition(approx, count - 1)[:count])  # store order, so ties break as without it
    bounds = np.cumsum([0] + [p.positions.size for p in picks])
    kept = [_Pick(p.segment, p.positions[keep[(keep >= lo) & (keep < hi)] - lo], False)
            for p, lo, hi in zip(picks, bounds[:-1], bounds[1:])]
    return [p for p in kept if p.positions.size], True


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


def _exact(group: Group, user: UserSpec, picks: list[_Pick]) -> _Scored:
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


def _mixture(group: Group, user: UserSpec, scored: _Scored, cand: np.ndarray, opts: RankOptions) -> MixtureFound | None:
    if opts.max_mixture < 2 or cand.size < 2 or not scored.mmd2[cand[0]] > 0:
        return None
    # c and the diagonal come from the ranking (no recomputation); K rows on demand
    rows = [group.segments[int(scored.segment[j])].rows(int(scored.position[j])) for j in cand]
    Z, B, offs = stack([r[0] for r in rows], [r[1] for r in rows])
    gram = mixture.Gram(scored.selfs[cand], lambda i: group.backend.gram_row(Z, B, offs, i))
    found = mixture.find(gram, scored.cross[cand], user.self_product, opts.max_mixture, opts.method)
    if found is None:
        return None
    sub = gram.sub(found.members)
    return MixtureFound([_ident(group, scored, int(cand[m])) for m in found.members], found.weights, found.mmd2,
                        float(found.weights @ sub @ found.weights))


def smallest(d: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest finite values, ascending (ties: lower position first)."""
    finite = np.nonzero(np.isfinite(d))[0]
    if count < finite.size:
        part = np.argpartition(d[finite], count - 1)[:count]
        # keep every value equal to the cut so ties resolve by position, as a stable sort would
        cut = d[finite][part].max()
        finite = finite[d[finite] <= cut]
    return finite[np.argsort(d[finite], kind="stable")][:count]
