"""Fitting helpers for table RKME: input checks, non-finite fill, column scales, gamma choice and
check, seeded k-means."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..errors import InputDataError, SpecParamError
from .kernels import chunk_rows, iter_chunks, median_sq_distance

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
        raise SpecParamError(f"K must be at least 1, got {K}")
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


def median_gamma(S: np.ndarray) -> float:
    """The median heuristic ``1 / median squared distance`` on the rows of ``S`` (1.0 when every
    row is the same point: then any gamma gives the same specification)."""
    med = median_sq_distance(S, positive=True)
    return 1.0 / med if np.isfinite(med) and med > 0 else 1.0


def column_moments(X: np.ndarray, fill: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation in float64 (non-finite values replaced by ``fill``),
    two passes over row blocks so that large or float32 inputs are never copied whole."""
    n, d = X.shape
    total = np.zeros(d)
    for _, block in iter_chunks(X, chunk_rows(d), fill):
        total += block.sum(axis=0)
    mean = total / n
    sq = np.zeros(d)
    for _, block in iter_chunks(X, chunk_rows(d), fill):
        sq += ((block - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(sq / n)


def constant_columns(sd: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Columns that do not vary: a standard deviation of at most 1e-12 of their magnitude."""
    return np.asarray(sd) <= 1e-12 * np.maximum(np.abs(mean), 1e-300)


def standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, fill: np.ndarray | None) -> np.ndarray:
    """``(X - mean) / scale`` as a new float64 array, written block by block (``X`` is never modified)."""
    out = np.empty(X.shape, dtype=np.float64)
    for start, block in iter_chunks(X, chunk_rows(X.shape[1]), fill):
        out[start : start + block.shape[0]] = (block - mean) / scale
    return out


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
    """Seeded k-means on the rows of ``S``: scikit-learn's k-means++ seeding, then its Lloyd iterations.

    Deterministic for a given ``rng`` state (one integer seed is drawn from it). Empty clusters are
    relocated by scikit-learn to far points, never left at the origin; fewer distinct rows than
    ``K`` give repeated centres (the weights then share the mass), which is not worth a warning.
    """
    # imported here, not at module load: scikit-learn costs ~0.8 s, and reading a spec never needs it
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.exceptions import ConvergenceWarning

    seed = int(rng.integers(2**31 - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        centers, _ = kmeans_plusplus(S, K, random_state=seed)
        if max_iter < 1:
            return centers
        km = KMeans(K, init=centers, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd", random_state=seed)
        return np.asarray(km.fit(S).cluster_centers_, dtype=np.float64)
