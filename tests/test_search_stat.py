"""Statistical search on a Gaussian market: ranking, mixture, bulk == loop, float32, prefilter (table specs)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_search_fixtures import GAMMA, fit, learnware_specs, sample

from lwdock.search import bulk, mixture, prefilter, store
from lwdock.search.api import search_cache
from lwdock.search.engine import smallest
from lwdock.search.scores import match_score
from lwdock.errors import SpecFileError
from lwdock.search.user import as_user_spec
from lwdock.spec.kernels import weighted_inner as inner

N = 12


@pytest.fixture(scope="module")
def market():
    return learnware_specs(N)


def _stack(specs):
    z = np.concatenate([s.z_ for s in specs])
    beta = np.concatenate([s.beta_ for s in specs])
    offsets = np.concatenate([[0], np.cumsum([s.beta_.size for s in specs])])
    return z, beta, offsets


def _cache(tmp_path, specs, dtype="float64"):
    z, beta, offsets = _stack(specs)
    ids = [f"lw{i:02d}" for i in range(len(specs))]
    return store.bulk_load(tmp_path / f"cache-{dtype}", ids, z, beta, offsets, dtype=dtype)


def kernel_mmd2(kernel, a, b) -> float:  # type: ignore[no-untyped-def]
    """MMD^2 of two specs under a dock kernel, the straightforward way (map, then three inner products)."""
    za, zb, g = kernel.map(a.z_), kernel.map(b.z_), kernel.gamma
    return inner(za, a.beta_, za, a.beta_, g) - 2 * inner(za, a.beta_, zb, b.beta_, g) + inner(zb, b.beta_, zb, b.beta_, g)


def test_user_from_j_gets_j_first(tmp_path, market):
    mu, specs = market
    c = _cache(tmp_path, specs)
    for j in (0, 5, 11):
        user = fit(sample(mu[j], 400, seed=50 + j))
        res = search_cache(c, user, k=3)
        assert res.singles[0].id == f"lw{j:02d}"
        assert res.singles[0].score > res.singles[1].score


def test_half_half_mixture_recovers_both_with_half_weights(tmp_path, market):
    mu, specs = market
    c = _cache(tmp_path, specs)
    # the two centres farthest apart, so both halves are clearly separate
    d = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    j, k = np.unravel_index(np.argmax(d), d.shape)
    X = np.vstack([sample(mu[j], 300, 7), sample(mu[k], 300, 8)])
    user = fit(X, K=40)
    for method in ("qp", "greedy", "auto"):
        res = search_cache(c, user, method=method)
        mix = res.mixture
        assert mix is not None, method
        assert set(mix.ids) == {f"lw{j:02d}", f"lw{k:02d}"}, method
        assert all(abs(w - 0.5) <= 0.1 for w in mix.weights), (method, mix.weights)
        assert mix.mmd2 < res.singles[0].mmd2
        assert mix.score > res.singles[0].score


def test_bulk_equals_per_learnware_loop(tmp_path, market):
    mu, specs = market
    c = _cache(tmp_path, specs)
    user = fit(sample(mu[3] + 0.7, 300, seed=99))
    res = search_cache(c, user, k=N)
    got = {s.id: s.mmd2 for s in res.singles}
    # the dock's kernel, one learnware at a time
    kernel = c.group(c.keys()[0]).kernel
    want = {f"lw{i:02d}": kernel_mmd2(kernel, s, user) for i, s in enumerate(specs)}
    assert set(got) == set(want)
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-9
    # and the batched kernels against bulk.loop_mmd2
    z, beta, off = _stack(specs)
    cross = bulk.cross_products(z, beta, off, user.z_, user.beta_, GAMMA)
    selfs = bulk.self_products(z, beta, off, GAMMA)
    loop = bulk.loop_mmd2([s.z_ for s in specs], [s.beta_ for s in specs], user.z_, user.beta_, GAMMA)
    uu = inner(user.z_, user.beta_, user.z_, user.beta_, GAMMA)
    np.testing.assert_allclose(selfs - 2 * cross + uu, loop, rtol=0, atol=1e-12)


def test_float32_storage_keeps_ranking(tmp_path, market):
    mu, specs = market
    c64, c32 = _cache(tmp_path, specs, "float64"), _cache(tmp_path, specs, "float32")
    user = fit(sample(mu[4], 300, seed=5))
    r64, r32 = search_cache(c64, user, k=N), search_cache(c32, user, k=N)
    assert r64.ids == r32.ids
    a = np.array([s.mmd2 for s in r64.singles])
    b = np.array([s.mmd2 for s in r32.singles])
    assert np.max(np.abs(a - b)) <= 1e-5 * max(1.0, a.max())


def test_prefilter_reranks_exactly(tmp_path):
    # many small synthetic RKMEs so the prefilter really drops candidates
    rng = np.random.default_rng(3)
    n, K, d = 3000, 8, 4
    centres = rng.uniform(-6, 6, size=(n, d))
    z = (centres[:, None, :] + rng.normal(size=(n, K, d))).reshape(-1, d)
    beta = np.full(n * K, 1.0 / K)
    off = np.arange(n + 1) * K
    c = store.bulk_load(tmp_path / "pf", [f"x{i}" for i in range(n)], z, beta, off, dtype="float64")
    user = {"z": centres[17] + rng.normal(size=(30, d)), "beta": np.full(30, 1 / 30)}
    exact = search_cache(c, user, k=10, prefilter=False)
    approx = search_cache(c, user, k=10, prefilter=True)
    assert approx.counts["prefiltered"] and not exact.counts["prefiltered"]
    assert exact.singles[0].id == "x17"
    overlap = len(set(exact.ids) & set(approx.ids))
    assert overlap >= 9
    common = {s.id: s.mmd2 for s in exact.singles}
    for s in approx.singles:  # re-ranked values are the exact ones
        if s.id in common:
            assert abs(common[s.id] - s.mmd2) < 1e-12


def test_rff_sketch_estimates_mmd():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(loc=0.8, size=(50, 3))
    wa, wb = np.full(50, 0.02), np.full(50, 0.02)
    W = prefilter.frequencies(3, 0.1, m=4096)
    sa, sb = prefilter.user_sketch(a, wa, W), prefilter.user_sketch(b, wb, W)
    exact = inner(a, wa, a, wa, 0.1) - 2 * inner(a, wa, b, wb, 0.1) + inner(b, wb, b, wb, 0.1)
    assert abs(float(((sa - sb) ** 2).sum()) - exact) < 0.2 * exact + 1e-3


def test_match_in_unit_interval_and_query_independent():
    s = match_score(np.array([1.0, 0.75, 0.0]), 1.0, np.array([1.0, 1.0, 1.0]))
    assert s[0] == 1.0 and s[2] == 0.0 and 0 < s[1] < 1
    # the same pair gets the same score whatever else is in the list
    assert match_score(0.75, 1.0, 1.0) == s[1]


def test_greedy_stops_when_mmd_stops_dropping():
    # two identical candidates: the second adds nothing, so no mixture
    K = np.array([[1.0, 1.0], [1.0, 1.0]])
    c = np.array([0.8, 0.8])
    assert mixture.greedy(K, c, 1.0, 5) is None


def test_bad_user_specs_are_rejected():
    from lwdock.errors import InputDataError

    with pytest.raises(InputDataError, match="not finite"):
        as_user_spec({"z": [[np.nan, 1.0]], "beta": [1.0], "gamma": 0.1})
    with pytest.raises(InputDataError, match="beta has"):
        as_user_spec({"z": [[0.0, 1.0]], "beta": [0.5, 0.5], "gamma": 0.1})
    with pytest.raises(InputDataError, match="not a fitted RKME"):
        as_user_spec({"beta": [1.0]})
    assert as_user_spec({"z": [[0.0, 1.0]], "beta": [1.0]}).key == "table/2"  # no gamma needed


def test_spec_file_parsed_once_per_content(tmp_path, market):
    # the parsed file is kept by content: the same bytes give the same numbers without a parse,
    # an edited file is read again, and nobody can change the kept arrays
    _, specs = market
    path = tmp_path / "user.json"
    specs[0].save(path)
    first, again = as_user_spec(path), as_user_spec(str(path))
    assert first is not again and np.array_equal(first.z, again.z) and again.z is first.z
    for kept in (again.z, again.beta):
        with pytest.raises(ValueError, match="read-only"):
            kept[0] = 1.0
    again.rows = "mine"  # each caller's record is its own
    assert as_user_spec(path).rows is None
    data = json.loads(path.read_text())
    data["z"][0][0] += 1.0
    del data["checksum"]  # a hand-edited file, as a reference tool would write it
    path.write_text(json.dumps(data))
    edited = as_user_spec(path)
    assert not np.array_equal(edited.z, first.z) and np.isfinite(edited.z).all()
    path.write_text("{")
    with pytest.raises(SpecFileError, match=re.escape(str(path)) + ".*not valid JSON") as bad:
        as_user_spec(path)
    assert "\n" not in str(bad.value)  # one line, naming the file: nothing of an error is kept


def test_a_reused_manifest_identity_never_returns_an_older_group(tmp_path, market):
    # a file system may give the next manifest the inode and mtime tick of an earlier one: the
    # group a process kept for that earlier manifest must not stand in for the new one
    _, specs = market
    first = _cache(tmp_path, specs)
    reader = store.SegmentStore(first.directory)
    kept = reader.group(reader.keys()[0])
    first.apply([], ["lw03"], generation=2)
    later = store.SegmentStore(first.directory)
    assert later.group(later.keys()[0]) is not kept  # a new manifest file: opened again
    again = store.SegmentStore(first.directory)  # the same manifest read again: shared
    assert again.group(again.keys()[0]) is later.group(later.keys()[0])
    stale = store.SegmentStore(first.directory)
    old_sig = next(sig for sig, g in store._OPENED.items() if g is kept)
    stale._stamp = old_sig[2]  # the earlier manifest's identity, handed out again
    group = stale.group(stale.keys()[0])
    assert group is not kept and "lw03" in group.removed and "lw03" not in kept.removed


def test_other_dimension_finds_no_group(tmp_path, market):
    _, specs = market
    c = _cache(tmp_path, specs)
    res = search_cache(c, {"z": np.zeros((3, 7)), "beta": np.full(3, 1 / 3)})
    assert res.empty and res.explanation.startswith("0 of 12 table learnwares have dimension 7")
    assert "dimensions in the dock: 4 (12)" in res.explanation


def test_float32_arithmetic_within_documented_tolerance():
    # float32 storage computes kernels in float32; MMD^2 stays within 1e-6 x (<u,u> + <R,R>)
    rng = np.random.default_rng(11)
    n, K, d = 200, 20, 8
    z = (rng.normal(size=(n, 1, d)) + rng.normal(size=(n, K, d))).reshape(-1, d)
    beta = rng.dirichlet(np.ones(K), size=n).ravel()
    off = np.arange(n + 1) * K
    uz, ub = rng.normal(size=(30, d)), np.full(30, 1 / 30)
    gamma = 1.0 / (2 * d)
    c64 = bulk.cross_products(z, beta, off, uz, ub, gamma)
    c32 = bulk.cross_products(z.astype(np.float32), beta, off, uz, ub, gamma)
    z32 = z.astype(np.float32).astype(np.float64)  # the same stored points, float64 arithmetic
    c32_exact = bulk.cross_products(z32, beta, off, uz, ub, gamma)
    selfs = bulk.self_products(z32, beta, off, gamma)
    uu = inner(uz, ub, uz, ub, gamma)
    assert np.max(np.abs(2 * (c32 - c32_exact)) / (uu + selfs)) <= 1e-6
    assert np.max(np.abs(c64 - c32) / c64) <= 1e-5
    # float64 storage really is float64 arithmetic
    loop = np.array([inner(z[off[i]:off[i + 1]], beta[off[i]:off[i + 1]], uz, ub, gamma) for i in range(n)])
    np.testing.assert_allclose(c64, loop, rtol=1e-12, atol=0)
    # a user far from every learnware: each kernel value is the floor's stand-in, still within tolerance
    far = bulk.cross_products(z.astype(np.float32), beta, off, uz + 100.0, ub, gamma)
    assert np.all(far > 0) and np.max(2 * far / (uu + selfs)) <= 1e-6


def test_exp_floor_keeps_weighted_kernel_values_normal():
    # a floored kernel value times any weight from SMALLEST_WEIGHT_32 up is a normal float32: a
    # subnormal product sends the matrix products after the exp down the CPU's slow path
    floor = np.exp(bulk.EXP_FLOOR_32)
    assert floor.dtype == np.float32 and floor * np.float32(bulk.SMALLEST_WEIGHT_32) >= np.finfo(np.float32).tiny
    assert floor < 1e-28  # and it stands in only for what no float32 sum of real values can hold


@pytest.mark.parametrize("seed", range(6))
def test_fast_greedy_equals_straightforward_greedy(seed):
    rng = np.random.default_rng(seed)
    # RKME-like Gram matrices: mean embeddings of random point sets
    m, K, d = 25, 15, 3
    pts = rng.normal(size=(m, 1, d)) * 1.5 + rng.normal(size=(m, K, d))
    w = rng.dirichlet(np.ones(K), size=m)
    Z, B = pts.reshape(-1, d), w.ravel()
    offs = np.arange(m + 1) * K
    G = np.array([bulk.gram_row(Z, B, offs, i, 0.3) for i in range(m)])
    G = 0.5 * (G + G.T)
    # a user that mixes 2-4 of them plus noise
    k = int(rng.integers(2, 5))
    mix = rng.choice(m, k, replace=False)
    uz = np.concatenate([pts[i] for i in mix]) + 0.1 * rng.normal(size=(k * K, d))
    ub = np.concatenate([w[i] for i in mix]) / k
    c = np.array([inner(uz, ub, pts[i], w[i], 0.3) for i in range(m)])
    uu = inner(uz, ub, uz, ub, 0.3)
    want = mixture.greedy_reference(G, c, uu, 5)
    lazy = mixture.Gram(np.diag(G).copy(), lambda i: G[i])
    for K_ in (G, lazy):
        got = mixture.greedy(K_, c, uu, 5)
        assert (got is None) == (want is None)
        if want is not None:
            assert got.members == want.members
            np.testing.assert_allclose(got.weights, want.weights, atol=1e-6)
            assert abs(got.mmd2 - want.mmd2) <= 1e-9 * max(1.0, want.mmd2)


def test_screen_matches_cvxopt_per_candidate():
    from lwdock.spec.qp import solve_simplex_qp

    rng = np.random.default_rng(5)
    A = rng.normal(size=(8, 30))
    K = A @ A.T / 30
    c = rng.normal(size=8) * 0.3
    P = [2, 5, 6]
    prev = solve_simplex_qp(K[np.ix_(P, P)], c[P])[1]
    cand = [0, 1, 3, 4, 7]
    got = mixture.screen(K[np.ix_(P, P)], K[np.ix_(cand, P)], K[cand, cand], c[P], c[cand], prev)
    want = [solve_simplex_qp(K[np.ix_(P + [j], P + [j])], c[P + [j]])[1] for j in cand]
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_partial_top_k_equals_stable_sort():
    rng = np.random.default_rng(2)
    d = rng.integers(0, 20, size=500).astype(float)  # many ties
    d[[3, 77]] = np.inf
    want = np.argsort(np.where(np.isfinite(d), d, np.inf), kind="stable")[:30]
    np.testing.assert_array_equal(smallest(d, 30), want)
    assert list(smallest(d, 1000)) == list(np.argsort(d, kind="stable")[:498])
