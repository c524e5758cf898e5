"""RKMETableSpec: properties, fidelity, the raw-row guard, gamma check and edge cases."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris, load_wine

from lwdock.errors import ExitCode, InputDataError, SpecParamError
from lwdock.spec.kernels import data_self_inner, kernel_stats, rbf_kernel, sq_dists
from lwdock.spec.leak import leak_report
from lwdock.spec.rkme_table import RKMETableSpec

FAST = {"K": 10, "steps": 2}
PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mmd2(X: np.ndarray, Z: np.ndarray, beta: np.ndarray, gamma: float) -> float:
    c, _ = kernel_stats(X, Z, gamma, with_moments=False)
    return data_self_inner(X, gamma) + float(beta @ rbf_kernel(Z, Z, gamma) @ beta - 2 * beta @ c)


def clustered(n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((k, d))
    return centres[rng.integers(k, size=n)] + 0.3 * rng.standard_normal((n, d))


@st.composite
def tables(draw, min_rows=2, max_rows=40):  # type: ignore[no-untyped-def]
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    return scale * np.random.default_rng(seed).standard_normal((n, d))


# -- kernels --------------------------------------------------------------------
def test_kernel_is_clamped_and_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    A = 1e4 + rng.standard_normal((50, 3)) * 1e-3  # expansion round-off territory
    D = sq_dists(A, A)
    assert D.min() >= 0.0
    K = rbf_kernel(A, A, 0.5)
    assert K.max() <= 1.0 and np.allclose(np.diag(K), 1.0)
    B = rng.standard_normal((7, 3))
    direct = np.exp(-0.5 * ((B[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    assert np.allclose(rbf_kernel(B, B, 0.5), direct, atol=1e-12)


def test_chunked_kernel_stats_match_dense() -> None:
    rng = np.random.default_rng(1)
    X, Z = rng.standard_normal((3000, 4)), rng.standard_normal((6, 4))
    import lwdock.spec.kernels as kern

    old = kern.CHUNK_BYTES
    kern.CHUNK_BYTES = 4096  # force many small blocks
    try:
        c, m = kernel_stats(X, Z, 0.3)
    finally:
        kern.CHUNK_BYTES = old
    Kxz = np.exp(-0.3 * ((X[:, None, :] - Z[None]) ** 2).sum(-1))
    assert np.allclose(c, Kxz.mean(0)) and np.allclose(m, Kxz.T @ X / len(X))


# -- properties -----------------------------------------------------------------
@PROPS
@given(tables(), tables())
def test_dist_properties(X: np.ndarray, Y: np.ndarray) -> None:
    a = RKMETableSpec(**FAST).fit(X)
    Yd = Y[:, :1].repeat(X.shape[1], axis=1) if Y.shape[1] != X.shape[1] else Y
    b = RKMETableSpec(**FAST).fit(Yd)
    assert a.dist(a) == pytest.approx(0.0, abs=1e-12)
    a_copy = RKMETableSpec.from_dict(a.to_dict())
    assert a.dist(a_copy) == pytest.approx(0.0, abs=1e-9)
    assert a.dist(b) >= 0.0 and b.dist(a) >= 0.0
    assert a.dist(b) == pytest.approx(b.dist(a), rel=1e-9, abs=1e-12)
    assert a.inner_prod(b) == pytest.approx(b.inner_prod(a), rel=1e-9, abs=1e-12)
    assert np.all(a.beta_ >= 0) and a.beta_.sum() == pytest.approx(1.0)


@PROPS
@given(tables())
def test_same_seed_same_output_and_input_unchanged(X: np.ndarray) -> None:
    before = X.copy()
    X.setflags(write=False)  # any write attempt would raise
    a = RKMETableSpec(**FAST, random_state=3).fit(X)
    b = RKMETableSpec(**FAST, random_state=3).fit(X)
    assert np.array_equal(X, before)
    assert np.array_equal(a.z_, b.z_) and np.array_equal(a.beta_, b.beta_)
    assert np.array_equal(a.herding(5, random_state=1), b.herding(5, random_state=1))
    assert np.array_equal(a.sample(7, random_state=2), b.sample(7, random_state=2))


@PROPS
@given(tables(min_rows=3))
def test_leak_figure_is_zero_by_default(X: np.ndarray) -> None:
    s = RKMETableSpec(**FAST).fit(X)
    report = leak_report(s.z_, X)
    assert report["count"] == 0


@pytest.mark.parametrize("name", ["iris", "wine", "random60"])
def test_no_raw_rows_on_small_data(name: str) -> None:
    X = {
        "iris": lambda: load_iris().data,
        "wine": lambda: load_wine().data,
        "random60": lambda: np.random.default_rng(5).standard_normal((60, 6)),
    }[name]()
    guarded = RKMETableSpec().fit(X)
    assert leak_report(guarded.z_, X)["fraction"] == 0.0
    # without the guard the same recipe does publish raw rows: the guard is what fixes it
    open_ = RKMETableSpec(min_dist=0.0).fit(X)
    if name != "random60":
        assert leak_report(open_.z_, X)["fraction"] > 0.0
    # and the guard costs little fidelity
    assert mmd2(X, guarded.z_, guarded.beta_, 0.1) <= 1.5 * mmd2(X, open_.z_, open_.beta_, 0.1) + 1e-6


def test_fidelity_beats_random_subset_on_clustered_data() -> None:
    X = clustered(3000, 8, 12, seed=2)
    s = RKMETableSpec(K=30).fit(X)
    # the automatic fit works on standardised columns with the median-heuristic gamma there
    mu, sd = X.mean(axis=0), X.std(axis=0)
    Xs, zs, g = (X - mu) / sd, (s.z_ - mu) / sd, s.fit_gamma_
    ours = mmd2(Xs, zs, s.beta_, g)
    rng = np.random.default_rng(0)
    subsets = [mmd2(Xs, Xs[rng.choice(len(X), 30, replace=False)], np.full(30, 1 / 30), g) for _ in range(5)]
    assert ours < 0.5 * min(subsets)
    # objective_ is MMD^2 minus the data term, in the fit's units
    assert ours == pytest.approx(s.objective_ + data_self_inner(Xs, g), abs=1e-6)
    # an explicit gamma fits on raw units, as the reference does
    e = RKMETableSpec(K=30, gamma=0.05).fit(X)
    assert mmd2(X, e.z_, e.beta_, 0.05) == pytest.approx(e.objective_ + data_self_inner(X, 0.05), abs=1e-9)


def test_automatic_fit_is_per_column_scale_free() -> None:
    X = clustered(600, 4, 5, seed=3)
    units = np.array([1e-2, 1.0, 1e3, 1e5])
    a = RKMETableSpec(K=12, random_state=0).fit(X)
    b = RKMETableSpec(K=12, random_state=0).fit(X * units)
    assert a.fit_gamma_ == pytest.approx(b.fit_gamma_, rel=1e-6)
    np.testing.assert_allclose(b.z_ / units, a.z_, rtol=1e-4, atol=1e-6 * np.abs(a.z_).max())
    np.testing.assert_allclose(b.beta_, a.beta_, atol=1e-6)


def test_optimisation_improves_on_kmeans_init() -> None:
    X = np.random.default_rng(4).standard_normal((2000, 16))
    init = RKMETableSpec(K=20, steps=0, gamma=0.05).fit(X)
    fitted = RKMETableSpec(K=20, steps=5, gamma=0.05).fit(X)
    assert fitted.objective_ < init.objective_


def test_herding_and_sample_shapes_and_beta_untouched() -> None:
    s = RKMETableSpec(K=15, nonnegative_beta=False).fit(clustered(300, 3, 4, seed=1))
    beta = s.beta_.copy()
    H = s.herding(12, random_state=0)
    assert H.shape == (12, 3) and np.all(np.isfinite(H))
    assert s.sample(9, random_state=0).shape == (9, 3)
    assert np.array_equal(s.beta_, beta)
    assert not np.array_equal(s.herding(12, random_state=0), s.herding(12, random_state=1))


# -- edge cases -----------------------------------------------------------------
def test_one_row() -> None:
    s = RKMETableSpec().fit(np.array([[1.0, 2.0, 3.0]]))
    assert s.z_.shape == (1, 3) and s.beta_.tolist() == [1.0] and s.num_points_ == 1
    assert not np.array_equal(s.z_[0], [1.0, 2.0, 3.0])  # even a lone row is not published verbatim


def test_k_at_least_n_uses_reference_rule() -> None:
    s = RKMETableSpec(K=100).fit(np.random.default_rng(0).standard_normal((5, 2)))
    assert s.z_.shape == (3, 2)  # max(1, floor(2n/3))
    s = RKMETableSpec(K=5).fit(np.random.default_rng(0).standard_normal((9, 2)))
    assert s.z_.shape == (5, 2)


def test_constant_columns_and_constant_data() -> None:
    X = np.random.default_rng(0).standard_normal((80, 3))
    X[:, 1] = 7.0
    s = RKMETableSpec(K=10).fit(X)
    assert np.all(np.isfinite(s.z_)) and np.allclose(s.z_[:, 1], 7.0, atol=0.5)
    same = RKMETableSpec(K=10).fit(np.ones((30, 2)))
    assert np.all(np.isfinite(same.z_)) and same.beta_.sum() == pytest.approx(1.0)


def test_nan_and_inf_are_filled_on_a_copy() -> None:
    X = np.random.default_rng(0).standard_normal((60, 3))
    X[::7, 0] = np.nan
    X[::5, 2] = np.inf
    X[1, 1] = -np.inf
    before = X.copy()
    s = RKMETableSpec(K=10).fit(X)
    assert np.array_equal(np.isnan(X), np.isnan(before)) and np.array_equal(X[np.isfinite(X)], before[np.isfinite(before)])
    assert np.all(np.isfinite(s.z_))


def test_all_nonfinite_column_is_a_clear_error() -> None:
    X = np.random.default_rng(0).standard_normal((20, 3))
    X[:, 2] = np.nan
    X[::2, 2] = np.inf
    with pytest.raises(InputDataError, match="column"):
        RKMETableSpec().fit(X)


def test_huge_values_need_no_gamma_and_a_bad_explicit_gamma_warns(caplog: pytest.LogCaptureFixture) -> None:
    X = 1e6 * np.random.default_rng(0).standard_normal((200, 4))
    with caplog.at_level(logging.WARNING, logger="lwdock"):
        s = RKMETableSpec(K=10).fit(X)
    assert "gamma" not in caplog.text and s.suggested_gamma_ is None  # the default is scale-free
    assert np.all(np.isfinite(s.z_)) and np.all(np.isfinite(s.beta_))
    assert s.fit_gamma_ * np.median(np.sum((X[:50, None] / 1e6 - X[None, :50] / 1e6) ** 2, axis=-1)) == pytest.approx(
        1.0, rel=0.5)
    with caplog.at_level(logging.WARNING, logger="lwdock"):
        e = RKMETableSpec(K=10, gamma=0.1).fit(X)
    assert "gamma" in caplog.text and e.suggested_gamma_ is not None
    assert e.suggested_gamma_ * e.median_sq_dist_ == pytest.approx(1.0)
    assert s.dist(RKMETableSpec(K=10, random_state=1).fit(X)) >= 0.0


def test_reasonable_gamma_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lwdock"):
        RKMETableSpec(K=10, gamma=0.5).fit(np.random.default_rng(0).standard_normal((200, 2)))
    assert "gamma" not in caplog.text


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.array([["a", "b"]]), np.zeros((3, 0))])
def test_bad_inputs(bad: np.ndarray) -> None:
    with pytest.raises(InputDataError):
        RKMETableSpec().fit(bad)


def test_bad_params_and_mismatched_dims() -> None:
    # a bad hyperparameter is the caller's setting, not bad data: a usage error (exit 2)
    for bad in ({"gamma": -1}, {"gamma": float("nan")}, {"K": 0}, {"steps": -1}, {"min_dist": -0.1}):
        with pytest.raises(SpecParamError) as info:
            RKMETableSpec(**bad).fit(np.ones((5, 2)))
        assert info.value.exit_code == ExitCode.USAGE and not isinstance(info.value, InputDataError)
    a = RKMETableSpec(K=3).fit(np.random.default_rng(0).standard_normal((10, 2)))
    b = RKMETableSpec(K=3).fit(np.random.default_rng(0).standard_normal((10, 3)))
    with pytest.raises(InputDataError, match="dimension"):
        a.dist(b)
    with pytest.raises(InputDataError, match="not fitted"):
        RKMETableSpec().dim  # noqa: B018


def test_specs_are_scikit_learn_estimators() -> None:
    from sklearn.base import clone

    from lwdock.spec.rkme_image import RKMEImageSpec
    from lwdock.spec.rkme_text import RKMETextSpec

    for cls in (RKMETableSpec, RKMEImageSpec, RKMETextSpec):
        est = cls(K=7, random_state=3)
        twin = clone(est)
        assert type(twin) is cls and twin is not est
        assert twin.get_params(deep=False) == est.get_params(deep=False) == est.get_params(deep=True)
        assert twin.get_params()["K"] == 7
    fitted = RKMETableSpec(K=5, gamma=0.3).fit(clustered(100, 2, 3, seed=0))
    fresh = clone(fitted)  # hyperparameters only: the fitted state stays behind
    assert fresh.gamma == 0.3 and not hasattr(fresh, "z_")
    assert fresh.set_params(K=9).K == 9


def test_float32_and_max_samples() -> None:
    X = clustered(2000, 4, 3, seed=0).astype(np.float32)
    s = RKMETableSpec(K=10, max_samples=500).fit(X)
    assert s.z_.dtype == np.float64 and s.num_points_ == 2000


def test_cuda_device_is_explicit() -> None:
    import torch

    X = np.random.default_rng(0).standard_normal((50, 2))
    if not torch.cuda.is_available():
        from lwdock.errors import UsageError

        with pytest.raises(UsageError, match="CUDA"):
            RKMETableSpec(device="cuda").fit(X)
    else:  # pragma: no cover - GPU machines only
        a = RKMETableSpec(K=10, device="cuda").fit(X)
        b = RKMETableSpec(K=10, device="cpu").fit(X)
        assert np.allclose(a.z_, b.z_, atol=1e-8)
