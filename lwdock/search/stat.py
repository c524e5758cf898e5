"""Statistical search over one cache group: single ranking by MMD^2, then the mixture."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputDataError
from . import bulk, mixture, prefilter
from .cache import TABLE_TYPE, Group, SearchCache

TABLE_TYPES = (TABLE_TYPE, "RKMEStatSpecification")


@dataclass
class UserSpec:
    """The user's RKME as plain arrays (float64)."""

    z: np.ndarray
    beta: np.ndarray
    gamma: float
    type: str = TABLE_TYPE
    num_points: int | None = None
    _self: float | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.z.shape[1])

    @property
    def self_product(self) -> float:
        if self._self is None:
            with bulk.one_blas_thread():
                self._self = bulk.inner(self.z, self.beta, self.z, self.beta, self.gamma)
        return self._self

    def describe(self) -> dict[str, Any]:
        return {"type": self.type, "dim": self.dim, "K": int(self.z.shape[0]), "gamma": self.gamma, "num_points": self.num_points}


def as_user_spec(spec: Any, source: str = "user specification") -> UserSpec:
    """Accept a fitted spec object (``z_``/``beta_``), an object with ``z``/``beta``, or a dict."""
    if isinstance(spec, UserSpec):
        return spec
    get = spec.get if isinstance(spec, dict) else lambda k, d=None: getattr(spec, k, d)
    z = get("z_") if get("z_") is not None else get("z")
    beta = get("beta_") if get("beta_") is not None else get("beta")
    gamma = get("gamma")
    kind = str(get("type") or TABLE_TYPE)
    n = get("num_points_") if get("num_points_") is not None else get("num_points")
    if z is None or beta is None or gamma is None:
        raise InputDataError(f"{source}: not a fitted RKME (needs z, beta and gamma)")
    try:
        z = np.asarray(z, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64).ravel()
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise InputDataError(f"{source}: z, beta and gamma must be numeric") from None
    if z.ndim < 2 or z.shape[0] == 0:
        raise InputDataError(f"{source}: z must be a non-empty K x d array, got shape {z.shape}")
    z = z.reshape(z.shape[0], -1)
    if beta.size != z.shape[0]:
        raise InputDataError(f"{source}: beta has {beta.size} weights but z has {z.shape[0]} rows")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta)) and math.isfinite(gamma) and gamma > 0):
        raise InputDataError(f"{source}: z, beta or gamma is not finite (or gamma <= 0)")
    user = UserSpec(z, beta, gamma, kind, int(n) if n is not None else None)
    if not math.isfinite(user.self_product):
        raise InputDataError(f"{source}: its self inner product is not finite")
    return user


@dataclass
class StatResult:
    ids: list[str]  # top k, best first
    mmd2: np.ndarray
    self_products: np.ndarray
    considered: int
    prefiltered: bool
    mixture_ids: list[str] | None = None
    mixture_weights: np.ndarray | None = None
    mixture_mmd2: float | None = None
    mixture_self: float | None = None


def find_group(cache: SearchCache, user: UserSpec) -> Group | None:
    for key, meta in cache.groups_meta().items():
        g = float(meta["gamma"])
        if int(meta["dim"]) == user.dim and abs(g - user.gamma) <= 1e-12 * max(g, user.gamma):
            return cache.group(key)
    return None


def _gather(seg: Any, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the selected learnwares of one segment, stacked, with new offsets."""
    off = seg.offsets
    starts, lens = off[sel], off[sel + 1] - off[sel]
    new_off = np.concatenate([[0], np.cumsum(lens)])
    rows = np.repeat(starts - new_off[:-1], lens) + np.arange(int(new_off[-1]))
    return seg.z[rows], seg.beta[rows], new_off


def _exact(seg: Any, sel: np.ndarray, user: UserSpec, whole: bool) -> np.ndarray:
    if whole:
        return bulk.cross_products(seg.z, seg.beta, seg.offsets, user.z, user.beta, user.gamma)
    z, beta, off = _gather(seg, sel)
    return bulk.cross_products(z, beta, off, user.z, user.beta, user.gamma)


def rank(
    group: Group,
    user: UserSpec,
    allowed: set[str] | None = None,
    *,
    k: int = 10,
    max_mixture: int = 5,
    method: str = "greedy",
    use_prefilter: bool | None = None,
    rerank: int | None = None,
) -> StatResult:
    """Rank the group's live learnwares (restricted to ``allowed`` ids) against ``user``.

    ``rerank``: the pre-filter's exact re-rank budget (default :func:`prefilter.candidate_count`).
    """
    with bulk.one_blas_thread():
        return _rank(group, user, allowed, k, max_mixture, method, use_prefilter, rerank)


def _rank(
    group: Group, user: UserSpec, allowed: set[str] | None, k: int, max_mixture: int, method: str,
    use_prefilter: bool | None, rerank: int | None,
) -> StatResult:
    allowed_arr = np.array(sorted(a.encode() for a in allowed), dtype=bytes) if allowed is not None else None
    picks: list[tuple[int, np.ndarray, bool]] = []  # (segment, positions, whole segment?)
    for si, seg in enumerate(group.segments):
        mask = seg.live if allowed_arr is None else seg.live & np.isin(seg.ids, allowed_arr)
        pos = np.nonzero(mask)[0]
        if pos.size:
            picks.append((si, pos, pos.size == seg.ids.size))
    considered = int(sum(p[1].size for p in picks))
    empty = StatResult([], np.zeros(0), np.zeros(0), considered, False)
    if considered == 0:
        return empty
    uu = user.self_product
    pf = use_prefilter if use_prefilter is not None else considered > prefilter.AUTO_THRESHOLD
    budget = rerank if rerank is not None else prefilter.candidate_count(k, max_mixture, considered)
    if pf and considered > budget:
        us = prefilter.user_sketch(user.z, user.beta, group.rff)
        # exact self products, sketched cross term only: less noise than |s_u - s_R|^2
        approx = np.concatenate([
            group.segments[si].self_[pos] - 2.0 * (np.asarray(group.segments[si].sketch) @ us)[pos]
            for si, pos, _ in picks
        ])
        keep = np.sort(prefilter.candidates(approx, budget))
        bounds = np.cumsum([0] + [p[1].size for p in picks])
        picks = [
            (si, pos[keep[(keep >= lo) & (keep < hi)] - lo], False)
            for (si, pos, _), lo, hi in zip(picks, bounds[:-1], bounds[1:])
        ]
        picks = [p for p in picks if p[1].size]
    else:
        pf = False
    seg_of, pos_of, mmd2, selfs, crosses = [], [], [], [], []
    for si, pos, whole in picks:
        seg = group.segments[si]
        cross = _exact(seg, pos, user, whole)
        s = seg.self_[pos]
        seg_of.append(np.full(pos.size, si))
        pos_of.append(pos)
        mmd2.append(np.maximum(s - 2.0 * cross + uu, 0.0))
        selfs.append(s)
        crosses.append(cross)
    seg_all, pos_all = np.concatenate(seg_of), np.concatenate(pos_of)
    d_all, s_all, c_all = np.concatenate(mmd2), np.concatenate(selfs), np.concatenate(crosses)
    n_cand = max(2, max_mixture * max_mixture) if max_mixture >= 2 else 0
    order = _smallest(d_all, max(k, n_cand))

    def ident(j: int) -> str:
        return group.segments[int(seg_all[j])].ids[int(pos_all[j])].decode()

    top = order[:k]
    result = StatResult([ident(j) for j in top], d_all[top], s_all[top], considered, pf)
    cand = order[:n_cand]
    if max_mixture >= 2 and cand.size >= 2 and d_all[cand[0]] > 0:
        # c and the diagonal come from the ranking (no recomputation); K rows on demand
        arrays = [group.segments[int(seg_all[j])].rows(int(pos_all[j])) for j in cand]
        Z = np.concatenate([a[0] for a in arrays])
        B = np.concatenate([a[1] for a in arrays])
        offs = np.concatenate([[0], np.cumsum([a[1].size for a in arrays])])
        gram = mixture.Gram(s_all[cand], lambda i: bulk.gram_row(Z, B, offs, i, user.gamma))
        mix = mixture.find(gram, c_all[cand], uu, max_mixture, method)
        if mix is not None:
            sub = gram.sub(mix.members)
            result.mixture_ids = [ident(int(cand[m])) for m in mix.members]
            result.mixture_weights = mix.weights
            result.mixture_mmd2 = mix.mmd2
            result.mixture_self = float(mix.weights @ sub @ mix.weights)
    return result


def _smallest(d: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest finite values, ascending (ties: lower position first)."""
    finite = np.nonzero(np.isfinite(d))[0]
    if count < finite.size:
        part = np.argpartition(d[finite], count - 1)[:count]
        # keep every value equal to the cut so ties resolve by position, as a stable sort would
        cut = d[finite][part].max()
        finite = finite[d[finite] <= cut]
    return finite[np.argsort(d[finite], kind="stable")][:count]
