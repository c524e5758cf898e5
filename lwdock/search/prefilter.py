"""Approximate pre-filter: sketches of each RKME, and the one rule for how many candidates survive it.

With ``w ~ N(0, 2*gamma*I)`` and ``phi(x) = [cos(x.W), sin(x.W)] / sqrt(m)`` (m frequencies),
``phi(x).phi(y)`` is an unbiased estimate of the RBF kernel ``exp(-gamma |x-y|^2)``. An RKME's
sketch is ``s_R = sum_j beta_j phi(z_j)``, a fixed 2m-vector, and
``s_u . s_R`` estimates ``<u, R>``. Search scores all N learnwares with one matrix-vector
product (brute force, O(N m)) as ``<R,R> - 2 s_u.s_R`` -- the exact, precomputed self product
plus the sketched cross term, which is less noisy than ``|s_u - s_R|^2`` -- keeps the best
``candidates`` and re-ranks them exactly. The sketches live in the search store (float32), computed once per learnware.
(The NNGP kernel's sketches are random CNN features, :class:`lwdock.spec.nngp.RandomFeatures`.)

Every kernel backend has a :class:`Budget`: when the pre-filter runs by default and how many
candidates go on to the exact pass; :meth:`Budget.count` is the same rule for every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bulk import one_blas_thread, pool

DEFAULT_FREQUENCIES = 128  # 1 KB of float32 per learnware (docs/scaling.md: recall by frequencies)
WIDE_FREQUENCIES = 1024  # 8 KB per learnware, for groups the bounded pre-filter serves (Budget.frequencies)
BOUND_SIGMAS = 4.0  # the bounded pre-filter's margin for the best k, in standard errors of the sketched cross term
POOL_SIGMAS = 3.0  # and for the rest of the pool (coverage, verification, greedy's candidates)


@dataclass(frozen=True)
class Budget:
    """When a backend's pre-filter runs and how many candidates it keeps for the exact re-rank."""

    auto_above: int  # candidates above which prefilter=None turns it on
    floor: int  # never re-rank fewer (unless there are fewer)
    per_result: int  # re-rank at least this many per requested result
    fraction: float  # and at least this share of the candidates
    most: int | None = None  # but the share at most this many (the floors above still apply)
    bounded_from: int | None = None  # prefilter=None from this many candidates up to auto_above: bounded

    def applies(self, forced: bool | None, n: int) -> bool:
        return n > self.auto_above if forced is None else bool(forced)

    def bounded(self, forced: bool | None, n: int, frequencies: int) -> bool:
        """The default below ``auto_above`` on groups with wide sketches: every candidate the
        sketches cannot rule out is computed exactly (:func:`cross_estimate`)."""
        return (forced is None and self.bounded_from is not None and self.bounded_from <= n <= self.auto_above
                and frequencies >= WIDE_FREQUENCIES)

    def frequencies(self, n: int) -> int:
        """The sketch width of a group of ``n`` learnwares: wide where the bounded pre-filter runs."""
        return WIDE_FREQUENCIES if self.bounded_from is not None and n <= self.auto_above else DEFAULT_FREQUENCIES

    def count(self, k: int, pool: int, n: int) -> int:
        """``min(n, max(floor, per_result k, pool, min(ceil(fraction n), most)))``: the ``pool``
        candidates the later stages use (coverage, verification, the mixture) always come from
        exact values."""
        share = math.ceil(self.fraction * n)
        if self.most is not None:
            share = min(share, self.most)
        return min(n, max(self.floor, self.per_result * int(k), int(pool), share))


def frequencies(dim: int, gamma: float, m: int = DEFAULT_FREQUENCIES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, np.sqrt(2.0 * gamma), size=(dim, m))


def features(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    proj = np.asarray(x, dtype=np.float32) @ np.asarray(W, dtype=np.float32)
    m = W.shape[1]
    out = np.empty((proj.shape[0], 2 * m), dtype=np.float32)
    np.cos(proj, out=out[:, :m])
    np.sin(proj, out=out[:, m:])
    out *= np.float32(1.0 / np.sqrt(m))
    return out


def sketches(z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, W: np.ndarray, threads: int = 2) -> np.ndarray:
    """(N, 2m) float32 sketches of stacked learnwares (learnwares split across ``threads``)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    out = np.zeros((n, 2 * W.shape[1]), dtype=np.float32)
    if n == 0:
        return out
    parts = max(1, min(threads, n // 1000))
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    with one_blas_thread():
        futs = [pool(parts).submit(_sketch_range, z, beta, offsets, W, out, int(a), int(b))
                for a, b in zip(bounds[:-1], bounds[1:])]
        for f in futs:
            f.result()
    return out


def _sketch_range(z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, W: np.ndarray, out: np.ndarray, i: int, n: int) -> None:
    m = W.shape[1]
    Wt = np.ascontiguousarray(W.T, dtype=np.float32)
    scale = np.float32(1.0 / np.sqrt(m))
    rows = max(1, (1 << 21) // (2 * m))
    # chunks end on learnware boundaries so each segment sum is complete; features are laid out
    # (2m, rows) so the per-learnware sums run along contiguous memory (reduceat along axis 0
    # of a (rows, 2m) array was 75 % of the build time)
    while i < n:
        j = int(np.searchsorted(offsets, offsets[i] + rows, side="right")) - 1
        j = min(max(j, i + 1), n)
        s, e = int(offsets[i]), int(offsets[j])
        proj = Wt @ np.asarray(z[s:e], dtype=np.float32).T
        phi = np.empty((2 * m, e - s), dtype=np.float32)
        np.cos(proj, out=phi[:m])
        np.sin(proj, out=phi[m:])
        phi *= np.asarray(beta[s:e], dtype=np.float32) * scale
        out[i:j] = np.add.reduceat(phi, offsets[i:j] - s, axis=1).T
        i = j


def user_sketch(uz: np.ndarray, ubeta: np.ndarray, W: np.ndarray) -> np.ndarray:
    return (np.asarray(ubeta, dtype=np.float32) @ features(uz, W)).astype(np.float32)


def squares(sketches: np.ndarray, rows: int = 256) -> np.ndarray:
    """(N, 3m) ``[a^2, b^2, 2ab]`` of each sketch's cosine and sine halves ``a``, ``b``: with them
    the spread of a sketched product is one more matrix-vector product (:func:`cross_estimate`)."""
    S = np.asarray(sketches)
    n, m = S.shape[0], S.shape[1] // 2
    out = np.empty((n, 3 * m), dtype=np.float32)
    for s in range(0, n, rows):  # blocks: no N x 2m temporaries
        a, b = S[s : s + rows, :m], S[s : s + rows, m:]
        np.multiply(a, a, out=out[s : s + rows, :m])
        np.multiply(b, b, out=out[s : s + rows, m : 2 * m])
        np.multiply(a, b, out=out[s : s + rows, 2 * m :])
        out[s : s + rows, 2 * m :] *= 2.0
    return out


def cross_estimate(sketches: np.ndarray, sq: np.ndarray, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sketched ``<u, R>`` of each learnware and its standard error (``sq``: :func:`squares`).

    The estimate is the mean over the m frequencies of ``t_f = m (a_f a_uf + b_f b_uf)`` (``a``,
    ``b``: the cosine and sine halves of the sketches), i.i.d. terms for one learnware, so their
    spread estimates the error: ``se^2 = (mean t_f^2 - mean^2) / (m - 1)``, where
    ``sum_f (a_f a_uf + b_f b_uf)^2 = [a^2, b^2, 2ab] . [a_u^2, b_u^2, a_u b_u]``. float32
    products, the sketches' own precision (the variance is of the order of ``<u,R>^2`` or
    larger, so the difference does not cancel)."""
    u = np.asarray(us, dtype=np.float32)
    m = u.size // 2
    ua, ub = u[:m], u[m:]
    est = (np.asarray(sketches) @ u).astype(np.float64)
    total = (np.asarray(sq) @ np.concatenate([ua * ua, ub * ub, ua * ub])).astype(np.float64)
    return est, np.sqrt(np.maximum(m * total - est * est, 0.0) / (m - 1))


MISS_CALIBRATION = 8  # computed candidates needed to calibrate expected_misses


def expected_misses(computed: np.ndarray, exact: np.ndarray, left_out: np.ndarray, k: int) -> float | None:
    """About how many of the best ``k`` a fixed re-rank budget left out (None: too few computed).

    The sketch errors of learnwares alike are alike (they share the frequencies), so the error that
    decides membership is relative: it is measured on the computed candidates nearest the cut
    (those in the outer half by approximate value), as a shift (median of approximate minus exact
    MMD^2) and a spread (standard deviation). A left-out learnware beats the k-th exact value with
    probability ``Phi((kth - approx + shift) / spread)``; the sum over them is the expected number
    missed (thousands of far-off terms: :func:`normal_cdf` keeps its relative accuracy in the tail).
    Measured (benchmarks/bench_prefilter.py): 0.016-0.052 (medians) on markets where recall@10 was
    1.00, 1.2-2.2 where it fell to 0.14-0.925."""
    if computed.size < MISS_CALIBRATION or exact.size < k:
        return None
    if left_out.size == 0:
        return 0.0
    outer = np.argsort(computed, kind="stable")[computed.size // 2 :]
    err = computed[outer] - exact[outer]
    shift, spread = float(np.median(err)), float(np.std(err))
    kth = float(np.partition(exact, k - 1)[k - 1])
    if not spread > 0:
        return float(np.count_nonzero(left_out - shift <= kth))
    z = (kth - left_out + shift) / spread
    return float(np.sum(normal_cdf(z[z > -9.0])))  # the rest add below 1e-19 each


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF, vectorised, with relative error below 1.2e-7 everywhere (also far
    in the lower tail, where summing many terms would magnify an absolute error): ``erfc`` by the
    Chebyshev-fitted form of Numerical Recipes' ``erfcc`` (no scipy.special import in a search)."""
    x = np.abs(np.asarray(z, dtype=np.float64)) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * x)
    poly = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368,
              -1.26551223):
        poly = c + t * poly
    tail = 0.5 * t * np.exp(-x * x + poly)  # Phi(-|z|)
    return np.where(np.asarray(z) < 0, tail, 1.0 - tail)


def candidates(approx: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest approximate distances (unordered)."""
    if count >= approx.size:
        return np.arange(approx.size)
    return np.argpartition(approx, count)[:count]
