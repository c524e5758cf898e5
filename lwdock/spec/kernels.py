"""RBF kernels in float64, computed in memory-bounded chunks.

``k(a, b) = exp(-gamma * ||a - b||^2)``. Squared distances use the expansion
``|a|^2 - 2 a.b + |b|^2`` (one matrix product) and are clamped at 0, so round-off
never yields a negative squared distance or a kernel value above 1.

Data-sized work goes through :func:`iter_chunks`, which casts one block of rows
at a time to float64 (and fills non-finite values when asked), so a float32 or
memory-mapped input is never copied whole. Block sizes keep every temporary
under roughly ``CHUNK_BYTES``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CHUNK_BYTES = 16 * 1024 * 1024  # per temporary block; a few live at once


def chunk_rows(width: int, budget: int = CHUNK_BYTES) -> int:
    """Rows per block so that a ``rows x width`` float64 block stays under ``budget`` bytes."""
    return int(max(64, min(1 << 20, budget // (8 * max(1, width)))))


def iter_chunks(
    X: np.ndarray, rows: int, fill: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` with ``block`` a float64 copy-or-view of ``X[start:start+rows]``.

    ``fill`` (one value per column) replaces NaN and +-Inf in each block; the
    input itself is never written.
    """
    n = X.shape[0]
    for start in range(0, n, rows):
        block = np.asarray(X[start : start + rows], dtype=np.float64)
        if fill is not None:
            bad = ~np.isfinite(block)
            if bad.any():
                block = np.where(bad, fill, block)
        yield start, block


def sq_dists(
    A: np.ndarray, B: np.ndarray, B_sq: np.ndarray | None = None, A_sq: np.ndarray | None = None
) -> np.ndarray:
    """Squared Euclidean distances between rows, float64, clamped at 0 (not chunked).

    ``A`` (..., n, d) and ``B`` (..., m, d) give (..., n, m): leading axes batch several
    small problems into one matrix product (the search cache's self products use that).
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    a_sq = np.einsum("...ij,...ij->...i", A, A) if A_sq is None else A_sq
    b_sq = np.einsum("...ij,...ij->...i", B, B) if B_sq is None else B_sq
    D = A @ np.swapaxes(B, -1, -2)
    D *= -2.0
    D += a_sq[..., :, None]
    D += b_sq[..., None, :]
    np.maximum(D, 0.0, out=D)
    return D


def rbf(A: np.ndarray, B: np.ndarray, gamma: float, B_sq: np.ndarray | None = None,
        A_sq: np.ndarray | None = None) -> np.ndarray:
    """``exp(-gamma |a - b|^2)`` for every pair of rows (batched like :func:`sq_dists`; not chunked)."""
    D = sq_dists(A, B, B_sq, A_sq)
    D *= -gamma
    return np.exp(D, out=D)


def rbf_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """The ``len(A) x len(B)`` RBF kernel matrix in float64, computed in row blocks of ``A``.

    The result itself is materialised; for data-sized reductions use
    :func:`kernel_row_means` or :func:`kernel_stats` instead.
    """
    A = np.atleast_2d(np.asarray(A))
    B = np.atleast_2d(np.asarray(B, dtype=np.float64))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"dimension mismatch: {A.shape[1]} vs {B.shape[1]}")
    out = np.empty((A.shape[0], B.shape[0]), dtype=np.float64)
    b_sq = np.einsum("ij,ij->i", B, B)
    for start, block in iter_chunks(A, chunk_rows(max(B.shape[0], A.shape[1]))):
        out[start : start + block.shape[0]] = rbf(block, B, gamma, b_sq)
    return out


def weighted_inner(Za: np.ndarray, ba: np.ndarray, Zb: np.ndarray, bb: np.ndarray, gamma: float) -> float:
    """``sum_ij ba_i bb_j k(za_i, zb_j)``, chunked over ``Za``."""
    Zb = np.asarray(Zb, dtype=np.float64)
    bb = np.asarray(bb, dtype=np.float64)
    ba = np.asarray(ba, dtype=np.float64)
    b_sq = np.einsum("ij,ij->i", Zb, Zb)
    total = 0.0
    for start, block in iter_chunks(Za, chunk_rows(max(Zb.shape[0], Zb.shape[1]))):
        total += float(ba[start : start + block.shape[0]] @ (rbf(block, Zb, gamma, b_sq) @ bb))
    return total


def kernel_stats(
    X: np.ndarray, Z: np.ndarray, gamma: float, fill: np.ndarray | None = None, with_moments: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """One pass over the data: ``c_j = mean_i k(z_j, x_i)`` and ``m_j = mean_i k(z_j, x_i) x_i``.

    ``c`` gives the RKME weights' linear term; ``m`` gives the data part of the
    exact MMD gradient. Memory is one block of ``X`` plus one block of kernel values.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n = X.shape[0]
    K, d = Z.shape
    z_sq = np.einsum("ij,ij->i", Z, Z)
    c = np.zeros(K)
    m = np.zeros((K, d)) if with_moments else None
    for _, block in iter_chunks(X, chunk_rows(max(K, d)), fill):
        Kb = rbf(block, Z, gamma, z_sq)
        c += Kb.sum(axis=0)
        if m is not None:
            m += Kb.T @ block
    c /= n
    if m is not None:
        m /= n
    return c, m


def data_self_inner(X: np.ndarray, gamma: float, fill: np.ndarray | None = None) -> float:
    """``mean_{i,j} k(x_i, x_j)`` exactly, in blocks (O(n^2 d) time, O(block^2) memory)."""
    n = X.shape[0]
    rows = chunk_rows(max(X.shape[1], 2048), budget=CHUNK_BYTES)
    rows = min(rows, 2048)
    total = 0.0
    for i, A in iter_chunks(X, rows, fill):
        a_sq = np.einsum("ij,ij->i", A, A)
        for j, B in iter_chunks(X, rows, fill):
            if j < i:
                continue
            s = float(rbf(B, A, gamma, a_sq).sum())
            total += s if j == i else 2.0 * s
    return total / (n * n)


def median_sq_distance(S: np.ndarray, positive: bool = False) -> float:
    """Median of off-diagonal squared distances between the rows of ``S`` (``positive``: of the
    non-zero ones only, so repeated points do not pull the median to 0)."""
    if S.shape[0] < 2:
        return 0.0
    # imported here, not at module load: loading a spec file (every `lwdock search`) must not pay for scipy
    from scipy.spatial.distance import pdist

    # scipy's pairwise distances: exact (no |a|^2 - 2ab + |b|^2 cancellation) and only the n(n-1)/2 pairs
    d = pdist(np.asarray(S, dtype=np.float64), "sqeuclidean")
    if positive and np.any(d > 0):
        d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0
