"""How close a specification's points come to raw training rows.

The leak figure is the share of reduced-set points that lie within
``threshold`` x (median nearest-neighbour distance between raw rows) of some
raw row. With ``threshold=0.01`` this is the measure the issue tracker uses:
such a point is a raw row in all but name.

:func:`push_away` is the fitting-time guard: it moves any point closer than a
radius to its nearest raw row out to that radius, along the line from the row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputDataError
from .kernels import chunk_rows, iter_chunks, sq_dists

MAX_QUERIES = 512  # rows used to estimate the median NN distance on large data


def nearest_rows(Z: np.ndarray, X: np.ndarray, fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``Z``: distance to, and index of, its nearest row of ``X`` (chunked over ``X``)."""
    Z = np.asarray(Z, dtype=np.float64)
    best = np.full(Z.shape[0], np.inf)
    arg = np.zeros(Z.shape[0], dtype=np.int64)
    z_sq = np.einsum("ij,ij->i", Z, Z)
    for start, block in iter_chunks(X, chunk_rows(max(Z.shape[0], Z.shape[1])), fill):
        D = sq_dists(block, Z, z_sq).T  # (len(Z), block)
        j = D.argmin(axis=1)
        v = D[np.arange(D.shape[0]), j]
        better = v < best
        best[better] = v[better]
        arg[better] = j[better] + start
    return np.sqrt(best), arg


def median_nn_distance(
    X: np.ndarray, fill: np.ndarray | None = None, max_queries: int = MAX_QUERIES, random_state: int = 0
) -> float | None:
    """Median over raw rows of the distance to the nearest *other* raw row.

    Exact when ``n <= max_queries``; otherwise the median over a seeded sample
    of query rows, each searched against all rows (an unbiased sample of the
    same quantity). ``None`` when there is only one row.
    """
    n = X.shape[0]
    if n < 2:
        return None
    if n <= max_queries:
        q_idx = np.arange(n)
    else:
        q_idx = np.sort(np.random.default_rng(random_state).choice(n, size=max_queries, replace=False))
    Q = np.asarray(X[q_idx], dtype=np.float64)
    if fill is not None:
        Q = np.where(np.isfinite(Q), Q, fill)
    best = np.full(Q.shape[0], np.inf)
    q_sq = np.einsum("ij,ij->i", Q, Q)
    for start, block in iter_chunks(X, chunk_rows(max(Q.shape[0], Q.shape[1])), fill):
        D = sq_dists(block, Q, q_sq)  # rows: data block, cols: queries
        # a query must not match itself
        own = (q_idx >= start) & (q_idx < start + block.shape[0])
        D[q_idx[own] - start, np.nonzero(own)[0]] = np.inf
        np.minimum(best, D.min(axis=0), out=best)
    return float(np.sqrt(np.median(best)))


def leak_report(Z: np.ndarray, X: np.ndarray, threshold: float = 0.01, fill: np.ndarray | None = None) -> dict[str, Any]:
    """The leak figure of reduced set ``Z`` against data ``X`` (NaN/Inf in ``X`` filled with ``fill``)."""
    Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
    X2 = X.reshape(X.shape[0], -1)
    if Z.shape[1] != X2.shape[1]:
        raise InputDataError(f"the data has {X2.shape[1]} columns but the specification has dimension {Z.shape[1]}")
    med = median_nn_distance(X2, fill)
    dist, _ = nearest_rows(Z, X2, fill)
    if med is None:
        return {"threshold": threshold, "median_nn_distance": None, "radius": None, "count": None,
                "points": int(Z.shape[0]), "fraction": None, "min_distance": float(dist.min())}
    radius = threshold * med
    count = int((dist <= radius).sum())
    return {
        "threshold": threshold,
        "median_nn_distance": med,
        "radius": radius,
        "count": count,
        "points": int(Z.shape[0]),
        "fraction": count / Z.shape[0],
        "min_distance": float(dist.min()),
    }


def push_away(
    Z: np.ndarray, X: np.ndarray, radius: float, rng: np.random.Generator,
    fill: np.ndarray | None = None, max_rounds: int = 20,
) -> tuple[np.ndarray, int]:
    """Move every row of ``Z`` closer than ``radius`` to a row of ``X`` out to ``1.001 * radius``.

    Returns the new ``Z`` (a copy) and how many points were moved. Rounds repeat
    because a moved point can land near another row.
    """
    Z = np.array(Z, dtype=np.float64)
    moved = np.zeros(Z.shape[0], dtype=bool)
    if radius <= 0:
        return Z, 0
    target = 1.001 * radius
    for _ in range(max_rounds):
        dist, arg = nearest_rows(Z, X, fill)
        close = np.nonzero(dist < radius)[0]
        if close.size == 0:
            break
        rows = np.asarray(X[arg[close]], dtype=np.float64)
        if fill is not None:
            rows = np.where(np.isfinite(rows), rows, fill)
        direction = Z[close] - rows
        norm = np.linalg.norm(direction, axis=1)
        flat = norm < 1e-12 * max(1.0, radius)
        if flat.any():  # sits on the row: pick a seeded random direction
            direction[flat] = rng.standard_normal((int(flat.sum()), Z.shape[1]))
            norm[flat] = np.linalg.norm(direction[flat], axis=1)
        Z[close] = rows + direction * (target / norm)[:, None]
        moved[close] = True
    return Z, int(moved.sum())
