"""Batched RKME inner products over many learnwares at once.

Learnwares are stored *stacked*: every reduced-set point of every learnware is
one row of ``Z`` (M x d), ``beta`` (M,) holds their weights and ``offsets``
(N+1,) marks where each learnware's rows start and end. Then

    <user, R_i> = sum_{j in seg i} beta_j * sum_l k(z_j, u_l) b_l

is one matrix product (rows x user points), one exp, one matrix-vector product
and one segment sum (``np.add.reduceat``) -- no Python loop over learnwares.
Rows are processed in cache-sized blocks split across threads. With float32 storage (the
cache's default) the kernel values are computed in float32 and accumulated per learnware in
float64 (MMD^2 within ~1e-6 relative of float64 storage, see ``docs/search.md``); with float64
storage everything is float64.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from ..spec.kernels import rbf, weighted_inner

# Rows per block of the exact pass: the block's kernel values (rows x user points) stay in the
# L2 cache between the matrix product, the exp and the matrix-vector product.
BLOCK_ELEMENTS = 1 << 18
# self_products / sketches: ~32 MiB of float64 per batch
CHUNK_ELEMENTS = 1 << 22
PART_ROWS = 25_000
# float32 exponents are raised to this before exp. Below -87.3 the value is a subnormal float32
# (or underflows), and numpy's float32 exp takes a slow path for both (measured 7-14x slower per
# value); and a product of a kernel value with a weight that lands in the subnormal range makes
# the matrix products after the exp take the CPU's slow path too (measured: a GEMV over values of
# exp(-87) times weights of 0.01, 80x slower; a user far from every learnware searched 3x slower
# at 1,000). exp(-66) = 2.2e-29 keeps products with weights down to 6e-10 normal, and stands in for
# anything smaller: below float32 resolution of any sum that holds one kernel value above 1e-19.
EXP_FLOOR_32 = np.float32(-66.0)
SMALLEST_WEIGHT_32 = 6e-10  # weights from here up times exp(EXP_FLOOR_32) stay normal float32

_POOL: ThreadPoolExecutor | None = None
_CONTROLLER: ThreadpoolController | None = None
_LIMITER: Any = None
_LIMIT_DEPTH = 0
_LIMIT_GUARD = threading.Lock()
_LOCAL = threading.local()
THREADS = 2


def default_threads() -> int:
    """Threads one pass splits into: :data:`THREADS`, or what :func:`threads` set for this thread."""
    return int(getattr(_LOCAL, "threads", THREADS))


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Passes started by this thread use ``n`` threads (a shard's worker: the shards are the split)."""
    old = getattr(_LOCAL, "threads", None)
    _LOCAL.threads = n
    try:
        yield
    finally:
        if old is None:
            del _LOCAL.threads
        else:
            _LOCAL.threads = old


def one_blas_thread() -> AbstractContextManager[Any]:
    """Context limiting BLAS to one thread: we split the work ourselves, and a multi-threaded
    BLAS on small blocks collapses when another process holds a core (measured 15x slower).
    The limit is process-wide; nested or concurrent holders share it (the last one out restores
    it), so only the outermost pays threadpoolctl's ~20 us per change."""
    return _one_blas_thread()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    global _CONTROLLER, _LIMITER, _LIMIT_DEPTH
    with _LIMIT_GUARD:
        if _LIMIT_DEPTH == 0:
            if _CONTROLLER is None:
                _CONTROLLER = ThreadpoolController()
            _LIMITER = _CONTROLLER.limit(limits=1, user_api="blas")
        _LIMIT_DEPTH += 1
    try:
        yield
    finally:
        with _LIMIT_GUARD:
            _LIMIT_DEPTH -= 1
            if _LIMIT_DEPTH == 0 and _LIMITER is not None:
                _LIMITER.restore_original_limits()
                _LIMITER = None


def pool(threads: int) -> ThreadPoolExecutor:
    """The search's worker threads (numpy releases the GIL in BLAS and ufuncs)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:  # noqa: SLF001 - size check only
        _POOL = ThreadPoolExecutor(threads, thread_name_prefix="lwdock-search")
    return _POOL


def _user_side(uz: np.ndarray, ubeta: np.ndarray, gamma: float, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(d+2, Ku) right-hand matrix and weights so that [z, 1, -g|z|^2] @ U = -g|z-u|^2."""
    uz = np.asarray(uz, dtype=np.float64)
    U = np.empty((uz.shape[1] + 2, uz.shape[0]))
    U[:-2] = (2.0 * gamma) * uz.T
    U[-2] = -gamma * np.einsum("ij,ij->i", uz, uz)
    U[-1] = 1.0
    return np.ascontiguousarray(U, dtype=dtype), np.asarray(ubeta, dtype=dtype)


def _kernel_blocks(z: np.ndarray, U: np.ndarray, gamma: float, rows: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(s, e, k(z[s:e], columns of U))`` block by block, the block reused in place.

    The exponent comes out of one matrix product with the augmented rows [z, 1, -g|z|^2]
    (no separate passes for the two norm terms). The dtype of ``U`` is the arithmetic dtype:
    float32 for float32 storage, float64 otherwise (exact to rounding, the same expansion as
    the reference).
    """
    d = z.shape[1]
    dt = U.dtype
    aug = np.empty((rows, d + 2), dtype=dt)
    aug[:, d] = 1.0
    buf = np.empty((rows, U.shape[1]), dtype=dt)
    for s in range(0, z.shape[0], rows):
        e = min(s + rows, z.shape[0])
        n = e - s
        a, b = aug[:n], buf[:n]
        a[:, :d] = z[s:e]
        np.einsum("ij,ij->i", a[:, :d], a[:, :d], out=a[:, d + 1])
        a[:, d + 1] *= -gamma
        np.matmul(a, U, out=b)
        # no clamp at 0: a rounding-positive exponent gives exp <= 1 + 1e-6 (as in the reference)
        if dt == np.float32:
            np.maximum(b, EXP_FLOOR_32, out=b)  # see EXP_FLOOR_32
        np.exp(b, out=b)
        yield s, e, b


def _rows_into(z: np.ndarray, U: np.ndarray, ub: np.ndarray, gamma: float, out: np.ndarray, rows: int) -> None:
    """out[r] = sum_l k(z_r, u_l) b_l for the rows of ``z``, block by block (float32 storage:
    float32 kernel values and row sums over the user's points, all terms positive)."""
    for s, e, block in _kernel_blocks(z, U, gamma, rows):
        np.matmul(block, ub, out=out[s:e])


def _column_sums(z: np.ndarray, bz: np.ndarray, U: np.ndarray, gamma: float, rows: int) -> np.ndarray:
    """sum_r bz_r k(z_r, u_l) for every column l of ``U``: (cols,) float64, each block's sum in
    the arithmetic dtype (float32 storage: float32 over at most ``rows`` points)."""
    total = np.zeros(U.shape[1])
    weights = np.asarray(bz, dtype=U.dtype)
    for s, e, block in _kernel_blocks(z, U, gamma, rows):
        total += weights[s:e] @ block
    return total


def cross_products(
    z: np.ndarray,
    beta: np.ndarray,
    offsets: np.ndarray,
    uz: np.ndarray,
    ubeta: np.ndarray,
    gamma: float,
    threads: int | None = None,
) -> np.ndarray:
    """<user, R_i> for every stacked learnware i; returns (N,) float64 (``threads``: default
    :func:`default_threads`).

    Arithmetic follows the storage dtype of ``z``: float32 storage computes the kernel values
    and their sum over the user's points in float32, then weights and per-learnware sums in
    float64; any other storage computes everything in float64.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    if n <= 0:
        return np.zeros(0)
    dt = np.dtype(np.float32) if np.asarray(z[:0]).dtype == np.float32 else np.dtype(np.float64)
    U, ub = _user_side(uz, ubeta, gamma, dt)
    base, m = int(offsets[0]), int(offsets[-1])
    total = m - base
    rows = max(64, BLOCK_ELEMENTS // max(1, U.shape[1]))
    values = np.empty(total, dtype=dt)
    # threads only for passes of at least 2 x 25k rows: below that their start-up costs more than they save
    parts = max(1, min(default_threads() if threads is None else threads, total // PART_ROWS))
    with one_blas_thread():
        if parts > 1:
            # numpy releases the GIL in BLAS and ufuncs, so the parts run in parallel
            bounds = np.linspace(base, m, parts + 1).astype(np.int64)
            futs = [
                pool(parts).submit(_rows_into, z[lo:hi], U, ub, gamma, values[lo - base : hi - base], rows)
                for lo, hi in zip(bounds[:-1], bounds[1:])
            ]
            for f in futs:
                f.result()
        else:
            _rows_into(z[base:m], U, ub, gamma, values, rows)
    weighted = values.astype(np.float64)
    weighted *= np.asarray(beta[base:m], dtype=np.float64)
    return np.add.reduceat(weighted, offsets[:-1] - base)


def self_products(z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, gamma: float,
                  quantile: tuple[float, float] | None = None) -> Any:
    """<R_i, R_i> for every stacked learnware (precomputed once, stored in the cache).

    ``quantile=(power, q)`` also returns, per learnware, the beta-weighted ``q`` quantile of its
    own density ``f(x) = sum_j beta_j k(z_j, x)^power`` over its own points (coverage's
    reference level, from the same kernel matrices): ``(selfs, quantiles)``.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    out = np.empty(sizes.size)
    qs = np.empty(sizes.size)
    # learnwares with the same K are done as one batched (B, K, K) product
    for size in np.unique(sizes):
        idx = np.nonzero(sizes == size)[0]
        step = max(1, CHUNK_ELEMENTS // max(1, int(size) * int(size)))
        for s in range(0, idx.size, step):
            sel = idx[s : s + step]
            rows = (offsets[sel][:, None] + np.arange(size)[None, :]).ravel()
            zb = np.asarray(z[rows], dtype=np.float64).reshape(sel.size, size, -1)
            bb = np.asarray(beta[rows], dtype=np.float64).reshape(sel.size, size)
            d = rbf(zb, zb, gamma)  # (B, K, K): one batched matrix product
            out[sel] = np.einsum("bk,bkl,bl->b", bb, d, bb)
            if quantile is not None:
                qs[sel] = _own_quantiles(_power(d, quantile[0]), bb, quantile[1])
    return out if quantile is None else (out, qs)


def _power(d: np.ndarray, p: float) -> np.ndarray:
    """``d ** p``; the power 4 by two squarings (pow() was most of a million-learnware build)."""
    if p == 4.0:
        d2 = d * d
        return np.multiply(d2, d2, out=d2)
    return d**p


def _own_quantiles(K: np.ndarray, bb: np.ndarray, q: float) -> np.ndarray:
    """Per batch row: the ``q`` quantile, weighted by ``bb`` (clipped at 0), of ``K @ bb``."""
    f = np.einsum("bkl,bl->bk", K, bb)
    order = np.argsort(f, axis=1)
    fs = np.take_along_axis(f, order, axis=1)
    cw = np.cumsum(np.take_along_axis(np.clip(bb, 0.0, None), order, axis=1), axis=1)
    pos = np.argmax(cw >= q * cw[:, -1:], axis=1)
    return fs[np.arange(f.shape[0]), pos]


def coarse_densities(points: np.ndarray, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, gamma: float) -> np.ndarray:
    """``f_i(x) = sum_j B_ij k(Z_ij, x)`` at every point for each stacked learnware, (len(points), n)
    float64 from float32 kernel values and float32 sums over each learnware's points (values within
    ~1e-6 of the largest kernel value; exponents below -66 count as -66). For signals that compare
    densities with thresholds (coverage), not for ratios of far-out densities."""
    points = np.asarray(points, dtype=np.float64)
    W = block_weights(B, offsets)
    if len(Z) == 0:
        return np.zeros((points.shape[0], W.shape[1]))
    U, _ = _user_side(points, np.ones(points.shape[0]), gamma, np.dtype(np.float32))
    with one_blas_thread():
        # the points are the few columns, the learnwares' rows one block (a few pools' worth): the
        # sum over each learnware's rows is then one product with the block-diagonal weights
        _, _, block = next(_kernel_blocks(np.asarray(Z), U, gamma, max(1, len(Z))))
        return (W.T @ block).T.astype(np.float64)


def block_weights(B: np.ndarray, offsets: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """(M, n): column i holds learnware i's weights on its own rows, zeros elsewhere, so that
    ``values @ block_weights`` sums each learnware's weighted rows."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n, m = offsets.size - 1, int(offsets[-1])
    W = np.zeros((m, n), dtype=dtype)
    W[np.arange(m), np.repeat(np.arange(n), np.diff(offsets))] = np.asarray(B, dtype=dtype)
    return W


def gram_matrix(Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, gamma: float,
                diag: np.ndarray | None = None) -> np.ndarray:
    """``<R_a, R_b>`` for every pair of a few stacked learnwares, (n, n) float64, in the arithmetic
    of :func:`cross_products` (float32 storage: float32 kernel values summed over a's points in
    float32, weights and per-learnware sums in float64). The upper triangle only, mirrored: for
    each a, a's points against the points of the later learnwares at once, one weighted column
    sum (a vector-matrix product), then one segment sum per later learnware; the diagonal is
    ``diag`` when given (the stored self products), else computed the same way."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n, m = offsets.size - 1, int(offsets[-1])
    dt = np.dtype(np.float32) if np.asarray(Z[:0]).dtype == np.float32 else np.dtype(np.float64)
    Z = np.asarray(Z)
    U, _ = _user_side(Z, np.ones(m), gamma, dt)
    B64 = np.asarray(B, dtype=np.float64)
    G = np.zeros((n, n))
    first = 0 if diag is None else 1  # the first column of row a: a itself, or a + 1
    with one_blas_thread():
        for a in range(n - first):
            lo, hi, start = int(offsets[a]), int(offsets[a + 1]), int(offsets[a + first])
            # a's weighted kernel values against every later point, then summed per later learnware
            sums = _column_sums(Z[lo:hi], B[lo:hi], U[:, start:], gamma, max(64, BLOCK_ELEMENTS // max(1, m - start)))
            G[a, a + first :] = np.add.reduceat(sums * B64[start:], offsets[a + first : -1] - start)
    G = np.triu(G) + np.triu(G, 1).T
    if diag is not None:
        G[np.diag_indices(n)] = diag
    return G


def gram_row(Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, i: int, gamma: float) -> np.ndarray:
    """<R_i, R_b> for every b of a few stacked learnwares, all in float64: the straightforward row
    that the tests hold :func:`gram_matrix` and the backends' float32 rows against."""
    s, e = int(offsets[i]), int(offsets[i + 1])
    k = rbf(Z[s:e], Z, gamma)
    return np.add.reduceat(np.asarray(B[s:e], dtype=np.float64) @ k * B, np.asarray(offsets[:-1], dtype=np.int64))


def loop_mmd2(
    zs: Sequence[np.ndarray], betas: Sequence[np.ndarray], uz: np.ndarray, ubeta: np.ndarray, gamma: float
) -> np.ndarray:
    """The reference's way: one learnware at a time, every term recomputed per call."""
    out = np.empty(len(zs))
    for i, (z, b) in enumerate(zip(zs, betas)):
        out[i] = (weighted_inner(z, b, z, b, gamma) - 2.0 * weighted_inner(z, b, uz, ubeta, gamma)
                  + weighted_inner(uz, ubeta, uz, ubeta, gamma))
    return out
