"""The search's small exact pieces: the mixture pool's Gram matrix in one pass and the active-set
simplex QP, against their straightforward versions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lwdock.search import bulk
from lwdock.search.backends import RBFBackend

K, D = 40, 8


def _market(n: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, size=(n, D))
    z = (centres[:, None, :] + rng.normal(size=(n, K, D))).reshape(-1, D).astype(np.float32)
    beta = rng.dirichlet(np.full(K, 5.0), size=n).ravel()
    return centres, z, beta, np.arange(n + 1, dtype=np.int64) * K


def test_gram_rows_use_the_rankings_arithmetic():
    _, z, beta, off = _market(12, 1.0, seed=5)
    gamma = 0.05
    from lwdock.search.kernel import RBFKernel

    kernel = RBFKernel(np.ones(D, bool), np.ones(D), np.zeros(D), gamma, 12)
    backend = RBFBackend(None, kernel)  # type: ignore[arg-type]
    for i in (0, 5, 11):
        fast = backend.gram_row(z, beta, off, i)
        slow = bulk.gram_row(z.astype(np.float64), beta, off, i, gamma)  # float64, the straightforward way
        assert np.allclose(fast, slow, rtol=2e-6, atol=1e-9)


def _enumerated_qp(K: np.ndarray, c: np.ndarray) -> float:
    """The simplex QP's optimum the straightforward way: every support's KKT solution, the best
    feasible one (a convex QP's optimum is one of them)."""
    n = c.size
    best = np.inf
    for size in range(1, n + 1):
        for S in itertools.combinations(range(n), size):
            idx = list(S)
            A = np.ones((size + 1, size + 1))
            A[:size, :size] = K[np.ix_(idx, idx)] + 1e-12 * np.mean(np.abs(np.diag(K))) * np.eye(size)
            A[size, size] = 0.0
            w = np.linalg.lstsq(A, np.append(c[idx], 1.0), rcond=None)[0][:size]
            if np.all(w >= -1e-12):
                best = min(best, 0.5 * w @ K[np.ix_(idx, idx)] @ w - c[idx] @ w)
    return float(best)


@pytest.mark.parametrize("seed", range(40))
def test_active_set_qp_matches_cvxopt_and_enumeration(seed):
    from lwdock.search import mixture
    from lwdock.spec.qp import solve_simplex_qp

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9)) if seed % 2 else int(rng.integers(9, 40))
    F = rng.normal(size=(n, int(rng.integers(1, n + 2))))  # rank-deficient when it has fewer columns than n
    K = F @ F.T
    if seed % 5 == 0:
        K[:, 1], K[1, :] = K[:, 0], K[0, :]  # two identical learnwares
    c = rng.normal(size=n) + K.mean(axis=1)
    found = mixture.active_set_qp(K, c)
    assert found is not None
    w, obj = found
    w_ref, obj_ref = solve_simplex_qp(K, c)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert abs(obj - (0.5 * w @ K @ w - c @ w)) <= 1e-12 * max(1.0, abs(obj))  # the objective of its own weights
    assert obj <= obj_ref + 1e-9 * max(1.0, abs(obj_ref))  # never worse than the interior point
    assert obj >= obj_ref - 1e-6 * max(1.0, abs(obj_ref))  # and cvxopt is accurate to its tolerance
    if n <= 8:
        assert abs(obj - _enumerated_qp(K, c)) <= 1e-9 * max(1.0, abs(obj))


def test_active_set_qp_on_kernel_matrices_of_near_identical_learnwares():
    """The mixture's real matrices: Gram matrices of RKMEs, here of learnwares almost alike."""
    from lwdock.search import mixture
    from lwdock.spec.qp import solve_simplex_qp

    _, z, beta, off = _market(10, 0.05, seed=3)
    G = bulk.gram_matrix(z.astype(np.float64), beta, off, 0.05)
    c = G[0] * 0.6 + G[3] * 0.4  # the user: a 60/40 mixture of learnwares 0 and 3
    w, obj = mixture.active_set_qp(G, c)
    w_ref, obj_ref = solve_simplex_qp(G, c)
    assert obj <= obj_ref + 1e-12
    assert abs(w[0] - 0.6) < 1e-4 and abs(w[3] - 0.4) < 1e-4


def test_gram_matrix_in_one_pass_equals_its_rows():
    _, z, beta, off = _market(9, 1.0, seed=6)
    for Z in (z, z.astype(np.float64)):
        M = bulk.gram_matrix(Z, beta, off, 0.07)
        rows = np.array([bulk.gram_row(z.astype(np.float64), beta, off, i, 0.07) for i in range(9)])
        assert np.allclose(M, rows, rtol=2e-6 if Z.dtype == np.float32 else 1e-12, atol=1e-12)
        assert np.array_equal(M, M.T)
        known = np.array([rows[i, i] for i in range(9)])
        given = bulk.gram_matrix(Z, beta, off, 0.07, diag=known)  # the off-diagonal pairs only
        assert np.array_equal(np.diag(given), known)
        assert np.allclose(given, rows, rtol=2e-6 if Z.dtype == np.float32 else 1e-12, atol=1e-12)
