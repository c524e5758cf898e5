"""Fitting helpers for table RKME: input checks, non-finite fill, gamma check, seeded k-means."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputDataError
from .kernels import chunk_rows, iter_chunks, sq_dists

logger = logging.getLogger("lwdock")

MAX_REDUCED_SET = 1310720  # reference cap on K * D
GAMMA_HIGH = 10.0  # gamma * median squared distance above this: kernel values below e^-10
GAMMA_LOW = 1e-3  # below this: every kernel value is ~1


def as_table(X) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 2-D numeric view of ``X`` (no copy for ndarrays); trailing dimensions are flattened."""
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    elif hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise InputDataError(f"the data must be numeric, got dtype {X.dtype}")
    if X.ndim == 0:
        raise InputDataError("the data is a scalar, not a table")
    if X.shape[0] == 0:
        raise InputDataError("the data has no rows")
    X = X.reshape(X.shape[0], -1)
    if X.shape[1] == 0:
        raise InputDataError("the data has no columns")
    return X


def effective_k(K: int, n: int, d: int) -> int:
    """The reference's rules: cap ``K*d`` at 1310720 (K >= 20), then ``K >= n -> max(1, 2n//3)``."""
    if K < 1:
        raise InputDataError(f"K must be at least 1, got {K}")
    if K * d > MAX_REDUCED_SET:
        K = max(20, MAX_REDUCED_SET // d)
    if K >= n:
        K = max(1, (2 * n) // 3)
    return K


def fill_values(X: np.ndarray) -> np.ndarray | None:
    """Column means over finite values, or ``None`` when every value is finite.

    +-Inf counts as missing, like NaN. A column with no finite value is an error.
    """
    d = X.shape[1]
    total = np.zeros(d)
    count = np.zeros(d)
    any_bad = False
    for _, block in iter_chunks(X, chunk_rows(d)):
        ok = np.isfinite(block)
        if not any_bad and not ok.all():
            any_bad = True
        total += np.where(ok, block, 0.0).sum(axis=0)
        count += ok.sum(axis=0)
    if not any_bad:
        return None
    empty = np.nonzero(count == 0)[0]
    if empty.size:
        cols = ", ".join(str(int(c)) for c in empty[:10])
        raise InputDataError(
            f"column(s) {cols} have no finite value (all NaN or Inf)",
            hint="drop those columns before building a specification",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        mean = total / count
    if not np.all(np.isfinite(mean)):
        raise InputDataError("column means overflow float64; rescale the data")
    return mean


def take_rows(X: np.ndarray, idx: np.ndarray, fill: np.ndarray | None) -> np.ndarray:
    rows = np.asarray(X[idx], dtype=np.float64)
    if fill is not None:
        rows = np.where(np.isfinite(rows), rows, fill)
    return rows


def median_sq_distance(S: np.ndarray) -> float:
    """Median of off-diagonal squared distances between the rows of ``S``."""
    if S.shape[0] < 2:
        return 0.0
    D = sq_dists(S, S)
    return float(np.median(D[np.triu_indices(S.shape[0], 1)]))


def check_gamma(gamma: float, med: float) -> float | None:
    """Warn when ``gamma`` is degenerate for data whose median squared distance is ``med``.

    Returns the suggested gamma (``1 / med``, the median heuristic) or ``None``.
    """
    if not np.isfinite(med) or med <= 0:
        return None
    suggested = 1.0 / med
    ratio = gamma * med
    if ratio > GAMMA_HIGH:
        logger.warning(
            "gamma=%g is too large for this data's scale (gamma x median squared distance = %.3g): "
            "kernel values between rows all but vanish and the specification degenerates; "
            "try gamma=%.3g or standardise the features",
            gamma, ratio, suggested,
        )
    elif ratio < GAMMA_LOW:
        logger.warning(
            "gamma=%g is too small for this data's scale (gamma x median squared distance = %.3g): "
            "every kernel value is close to 1; try gamma=%.3g",
            gamma, ratio, suggested,
        )
    return suggested


def kmeans(S: np.ndarray, K: int, rng: np.random.Generator, max_iter: int = 20, tol: float = 1e-6) -> np.ndarray:
    """Seeded k-means (k-means++ seeding, vectorised Lloyd) on the rows of ``S``.

    An empty cluster is re-seeded at the point farthest from its centroid,
    never at the origin, and duplicate rows never give duplicate centres
    unless there are fewer distinct rows than ``K``.
    """
    m, d = S.shape
    s_sq = np.einsum("ij,ij->i", S, S)
    centers = np.empty((K, d))
    first = int(rng.integers(m))
    centers[0] = S[first]
    closest = sq_dists(S, centers[:1], None, s_sq)[:, 0]
    # k-means++: a few candidates per step, keep the one that lowers the potential most
    trials = 2 + int(np.log(K))
    for k in range(1, K):
        total = closest.sum()
        if total <= 0:
            cand = rng.integers(m, size=trials)
        else:
            cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * total)
            cand = np.minimum(cand, m - 1)
        dc = sq_dists(S, S[cand], s_sq[cand], s_sq)
        pot = np.minimum(closest[:, None], dc).sum(axis=0)
        best = int(pot.argmin())
        centers[k] = S[cand[best]]
        np.minimum(closest, dc[:, best], out=closest)
    scale = max(float(s_sq.mean()), 1e-300)
    for _ in range(max_iter):
        D = sq_dists(S, centers, None, s_sq)
        label = D.argmin(axis=1)
        counts = np.bincount(label, minlength=K).astype(np.float64)
        sums = np.zeros((K, d))
        np.add.at(sums, label, S) if m < 2048 else _group_sum(sums, label, S)
        new = centers.copy()
        nz = counts > 0
        new[nz] = sums[nz] / counts[nz, None]
        empty = np.nonzero(~nz)[0]
        if empty.size:
            far = np.argsort(D[np.arange(m), label])[::-1][: empty.size]
            new[empty] = S[far]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol * scale:
            break
    return centers


def _group_sum(out: np.ndarray, label: np.ndarray, S: np.ndarray) -> None:
    # sort by label, then reduceat: much faster than add.at on large inputs
    order = np.argsort(label, kind="stable")
    lab = label[order]
    starts = np.nonzero(np.r_[True, lab[1:] != lab[:-1]])[0]
    out[lab[starts]] = np.add.reduceat(S[order], starts, axis=0)
