"""The pre-filter's per-query check (lwdock.search.escalate): a small first pass where the sketches
separate the learnwares, the exact pass widened where they cannot (near-identical markets)."""

from __future__ import annotations

import numpy as np
import pytest

from lwdock.search import bulk, escalate, store
from lwdock.search.api import search_cache
from lwdock.search.backends import RBFBackend
from lwdock.search.engine import RankOptions, rank
from lwdock.search.user import as_user_spec

K, D = 40, 8


def _market(n: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, size=(n, D))
    z = (centres[:, None, :] + rng.normal(size=(n, K, D))).reshape(-1, D).astype(np.float32)
    beta = rng.dirichlet(np.full(K, 5.0), size=n).ravel()
    return centres, z, beta, np.arange(n + 1, dtype=np.int64) * K


def _user(centre: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"z": centre + rng.normal(size=(K, D)), "beta": np.full(K, 1.0 / K)}


@pytest.fixture(scope="module", params=[1.0, 0.05], ids=["separated", "near-identical"])
def market(request, tmp_path_factory):
    n = 2_500  # above the table backend's threshold: the pre-filter runs by default
    centres, z, beta, off = _market(n, request.param, seed=3)
    s = store.bulk_load(tmp_path_factory.mktemp("esc"), [f"lw{i:05d}" for i in range(n)], z, beta, off)
    return request.param, centres, s


@pytest.mark.parametrize("seed", range(6))
def test_default_search_returns_the_exact_top_10(market, seed):
    spread, centres, s = market
    u = _user(centres[(seed * 211) % len(centres)], seed)
    exact = search_cache(s, u, k=10, max_mixture=1, prefilter=False)
    auto = search_cache(s, u, k=10, max_mixture=1)
    assert auto.counts["prefiltered"] and not exact.counts["prefiltered"]
    assert auto.ids[:10] == exact.ids[:10]
    assert np.allclose([x.mmd2 for x in auto.singles], [x.mmd2 for x in exact.singles], rtol=0, atol=1e-12)


def test_the_first_pass_is_small_when_sketches_separate_and_widens_when_not(market):
    spread, centres, s = market
    group = s.group(s.keys()[0])
    passes: list[int] = []
    real = escalate.more_needed

    def spy(approx, sel, exact, needed):
        more = real(approx, sel, exact, needed)
        passes.append(int(sel.keep.size))
        return more

    escalate.more_needed = spy
    try:
        assert rank(group, as_user_spec(_user(centres[7], 1)), None, RankOptions(k=10)).prefiltered
    finally:
        escalate.more_needed = real
    if spread == 1.0:
        first = RBFBackend.budget.count(10, 20, 2_500) + escalate.SAMPLE  # 100 + a sample of 32
        assert passes[0] == first and len(passes) <= 2 and passes[-1] <= 2 * first  # at most a small widening
    else:
        assert len(passes) >= 2 and passes[-1] > 4 * passes[0]


def test_more_needed_follows_the_measured_error():
    rng = np.random.default_rng(0)
    exact = np.sort(rng.uniform(0.0, 1.0, 1_000))
    for noise, expect_more in ((1e-4, False), (0.3, True)):
        approx = exact + rng.normal(0.0, noise, exact.size)
        sel = escalate.select(approx, 100, seed=1)
        more = escalate.more_needed(approx, sel, exact[sel.keep], 10)
        assert (more > 0) == expect_more
    sel = escalate.select(exact, 2_000)  # everything exact: nothing can be missing
    assert not np.isfinite(sel.cut) and escalate.more_needed(exact, sel, exact, 10) == 0
    assert escalate.next_count(100, 10, 1_000) == 100 + 13 + escalate.SAMPLE and escalate.next_count(100, 400, 1_000) == 1_000


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


@pytest.mark.parametrize("seed", range(25))
def test_exact_small_qp_matches_cvxopt(seed):
    from lwdock.search import mixture
    from lwdock.spec.qp import solve_simplex_qp

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 11))
    F = rng.normal(size=(n, int(rng.integers(1, n + 2))))  # rank-deficient when it has fewer columns than n
    K = F @ F.T
    if seed % 5 == 0:
        K[:, 1], K[1, :] = K[:, 0], K[0, :]  # two identical learnwares
    c = rng.normal(size=n) + K.mean(axis=1)
    w, obj = mixture.exact_qp(K, c)
    w_ref, obj_ref = solve_simplex_qp(K, c)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert obj <= obj_ref + 1e-9 * max(1.0, abs(obj_ref))  # never worse than the interior point
    assert obj >= obj_ref - 1e-6 * max(1.0, abs(obj_ref))  # and cvxopt is accurate to its tolerance


def test_gram_matrix_in_one_pass_equals_its_rows():
    _, z, beta, off = _market(9, 1.0, seed=6)
    for Z in (z, z.astype(np.float64)):
        M = bulk.gram_matrix(Z, beta, off, 0.07)
        rows = np.array([bulk.gram_row(z.astype(np.float64), beta, off, i, 0.07) for i in range(9)])
        assert np.allclose(M, rows, rtol=2e-6 if Z.dtype == np.float32 else 1e-12, atol=1e-12)
        assert np.array_equal(M, M.T)
