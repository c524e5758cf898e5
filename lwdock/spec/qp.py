"""Quadratic programs on the probability simplex.

Solve ``min_b 1/2 b'Kb - c'b  subject to  b >= 0, sum(b) = 1`` for a positive
semi-definite ``K``. RKME weights (fitting) and mixture weights (search,
job selector) all reduce to this problem. cvxopt solves it; when cvxopt fails
(rank-deficient K, numerical trouble) a projected-gradient solver takes over,
so callers always get a feasible answer.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("lwdock")


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex (sort-based, O(n log n))."""
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, n + 1)
    rho = np.nonzero(u - css / idx > 0)[0][-1]
    theta = css[rho] / (rho + 1.0)
    return np.maximum(v - theta, 0.0)


def _objective(K: np.ndarray, c: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * b @ K @ b - c @ b)


def _projected_gradient(K: np.ndarray, c: np.ndarray, iters: int = 5000, tol: float = 1e-12) -> np.ndarray:
    """Accelerated projected gradient (FISTA) on the simplex; always feasible."""
    n = c.size
    lipschitz = float(np.linalg.eigvalsh(K)[-1]) if n > 1 else float(K[0, 0])
    step = 1.0 / max(lipschitz, 1e-12)
    b = np.full(n, 1.0 / n)
    y = b.copy()
    t = 1.0
    prev = _objective(K, c, b)
    for _ in range(iters):
        b_next = project_simplex(y - step * (K @ y - c))
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = b_next + ((t - 1.0) / t_next) * (b_next - b)
        b, t = b_next, t_next
        cur = _objective(K, c, b)
        if abs(prev - cur) <= tol * max(1.0, abs(cur)):
            break
        prev = cur
    return b


def solve_simplex_qp(K: np.ndarray, c: np.ndarray, nonnegative: bool = True) -> tuple[np.ndarray, float]:
    """Return ``(b, objective)`` for the simplex QP.

    With ``nonnegative=False`` the reference's unconstrained rule is used
    instead: ``b = (K + 1e-5 I)^-1 c`` (no simplex constraint).
    """
    K = np.asarray(K, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64).ravel()
    n = c.size
    if K.shape != (n, n):
        raise ValueError(f"K has shape {K.shape}, expected ({n}, {n})")
    if not nonnegative:
        b = np.linalg.solve(K + 1e-5 * np.eye(n), c)
        return b, _objective(K, c, b)
    if n == 1:
        b = np.ones(1)
        return b, _objective(K, c, b)
    K = 0.5 * (K + K.T)
    b = _cvxopt(K, c)
    if b is None:
        logger.debug("cvxopt failed on a %d-variable simplex QP; using projected gradient", n)
        b = _projected_gradient(K, c)
    b = np.maximum(b, 0.0)
    b /= b.sum()
    return b, _objective(K, c, b)


def _cvxopt(K: np.ndarray, c: np.ndarray) -> np.ndarray | None:
    try:
        from cvxopt import matrix, solvers
    except ImportError:  # pragma: no cover - cvxopt is a hard dependency
        return None
    n = c.size
    # a tiny ridge keeps the KKT system non-singular when K is rank-deficient
    P = matrix(K + 1e-10 * np.trace(K) / n * np.eye(n))
    q = matrix(-c)
    G = matrix(-np.eye(n))
    h = matrix(np.zeros(n))
    A = matrix(np.ones((1, n)))
    b = matrix(np.ones(1))
    options = {"show_progress": False, "abstol": 1e-10, "reltol": 1e-10, "feastol": 1e-10, "maxiters": 200}
    try:
        sol = solvers.qp(P, q, G, h, A, b, options=options)
    except (ValueError, ArithmeticError):
        return None
    if sol.get("status") not in ("optimal",) and sol.get("x") is None:
        return None
    x = np.asarray(sol["x"], dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        return None
    if sol.get("status") != "optimal":
        # accept a near-optimal answer only if it is nearly feasible
        if x.min() < -1e-6 or abs(x.sum() - 1.0) > 1e-6:
            return None
    return x
