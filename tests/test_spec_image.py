"""Image RKME: fitting, the NNGP kernel, reproducibility, files, and a small digits market."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lwdock.errors import InputDataError, SpecFileError
from lwdock.spec.nngp import nngp_kernel, self_kernel, weighted_inner_many
from lwdock.spec.rkme_image import RKMEImageSpec
from lwdock.spec.specfile import load_spec

# small and fast: the defaults are for real data sets
FAST = dict(K=8, steps=30, step_size=0.05, n_models=2, net_width=16, batch_size=128)
QUICK = dict(FAST, steps=4)  # for tests that do not compare distributions
GROUPS = [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 1, 8, 8), y


@pytest.fixture(scope="module")
def market(digits):  # type: ignore[no-untyped-def]
    X, y = digits
    return [RKMEImageSpec(**FAST, random_state=0).fit(X[np.isin(y, g)]) for g in GROUPS]


def test_fit_sets_attributes_and_keeps_input(digits) -> None:  # type: ignore[no-untyped-def]
    X, _ = digits
    X = X[:120].copy()
    X[0, 0, 0, 0] = np.nan
    X[1, 0, 3, 3] = np.inf
    before = X.copy()
    spec = RKMEImageSpec(**QUICK).fit(X)
    np.testing.assert_array_equal(np.isnan(X), np.isnan(before))
    np.testing.assert_array_equal(X[np.isfinite(X)], before[np.isfinite(before)])
    assert spec.z_.shape == (8, 1, 32, 32) and spec.z_.dtype == np.float32
    assert spec.beta_.shape == (8,) and abs(spec.beta_.sum() - 1) < 1e-9 and (spec.beta_ >= 0).all()
    assert spec.num_points_ == 120 and spec.shape == (1, 32, 32) and spec.dim == 1024
    assert np.isfinite(spec.z_).all()
    assert spec.type == "RKMEImageSpecification"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputDataError, match="N x C x H x W"):
        RKMEImageSpec(**FAST).fit(np.zeros((10, 64)))
    X = np.random.default_rng(0).random((5, 1, 8, 8))
    X[2] = np.nan
    with pytest.raises(InputDataError, match=r"image 3 \(counting from 1\)"):
        RKMEImageSpec(**FAST).fit(X)


def test_cuda_asked_without_cuda_is_a_usage_error() -> None:
    import torch

    from lwdock.errors import UsageError

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UsageError, match="CUDA"):
        RKMEImageSpec(**FAST, device="cuda").fit(np.zeros((4, 1, 8, 8)))


def test_reproducible_under_a_seed(digits) -> None:  # type: ignore[no-untyped-def]
    X, _ = digits
    a = RKMEImageSpec(**QUICK, random_state=3).fit(X[:150])
    b = RKMEImageSpec(**QUICK, random_state=3).fit(X[:150])
    c = RKMEImageSpec(**QUICK, random_state=4).fit(X[:150])
    np.testing.assert_array_equal(a.z_, b.z_)
    np.testing.assert_array_equal(a.beta_, b.beta_)
    assert not np.array_equal(a.z_, c.z_)


def test_self_distance_is_about_zero(market) -> None:  # type: ignore[no-untyped-def]
    spec = market[0]
    assert spec.dist(spec) == 0.0
    copy = RKMEImageSpec.from_dict(spec.to_dict())
    assert copy.dist(spec) < 1e-6 * spec.inner_prod(spec)
    others = [spec.dist(o) for o in market[1:]]
    assert min(others) > 100 * copy.dist(spec)


def test_shifted_class_mixtures_find_their_learnware(digits, market) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    rng = np.random.default_rng(7)
    for j, g in enumerate(GROUPS):
        p = np.where(np.isin(y, g), 1.0, 0.05)  # mostly group j, a little of everything else
        idx = rng.choice(len(y), size=200, replace=False, p=p / p.sum())
        user = RKMEImageSpec(**FAST, random_state=100 + j).fit(X[idx])
        dists = [user.dist(lw) for lw in market]
        assert int(np.argmin(dists)) == j, (j, dists)


def test_bulk_inner_products_equal_one_by_one(market) -> None:  # type: ignore[no-untyped-def]
    user = market[0]
    bulk = user.inner_prod_many(market[1:])
    single = [user.inner_prod(o) for o in market[1:]]
    np.testing.assert_allclose(bulk, single, rtol=1e-6)
    # the explicit kernel matrix gives the same numbers
    K = nngp_kernel(user.z_, market[1].z_)
    assert abs(user.beta_ @ K @ market[1].beta_ - bulk[0]) < 1e-6


def test_nngp_kernel_is_symmetric_and_psd() -> None:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 3, 32, 32))
    K = nngp_kernel(A, dtype="float64")
    np.testing.assert_array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    np.testing.assert_allclose(np.diag(K), self_kernel(A, dtype="float64"), rtol=1e-12)
    # the pair path (A against a copy) agrees with the symmetric path
    np.testing.assert_allclose(nngp_kernel(A, A.copy(), dtype="float64"), K, rtol=1e-10, atol=1e-12)
    # chunking does not change values
    np.testing.assert_allclose(nngp_kernel(A, A[:5], dtype="float64", pair_budget=7), K[:, :5], rtol=1e-12)
    # Cauchy-Schwarz on every pair
    d = np.diag(K)
    assert (np.abs(K) <= np.sqrt(np.outer(d, d)) + 1e-12).all()
    w = rng.random(12)
    assert abs(weighted_inner_many(A, w, [(A, w)], dtype="float64")[0] - w @ K @ w) < 1e-9


def test_sample_and_herding_live_in_the_normalised_space(market) -> None:  # type: ignore[no-untyped-def]
    spec = market[1]
    s = spec.herding(20, random_state=0)
    assert s.shape == (20, 1, 32, 32)
    np.testing.assert_array_equal(spec.herding(20, random_state=0), s)
    plain = spec.sample(20, random_state=0)
    assert np.abs(s - plain).max() < 0.1  # z plus N(0, 0.01^2) noise
    picked = {int(np.argmin(((spec.z_ - p) ** 2).sum((1, 2, 3)))) for p in plain}
    assert all(spec.beta_[i] > 0 for i in picked)


def test_save_load_roundtrip_and_checksum(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    spec = market[2]
    path = tmp_path / "img.json"
    spec.save(path)
    back = load_spec(path)
    assert isinstance(back, RKMEImageSpec)
    np.testing.assert_array_equal(back.z_, spec.z_)
    np.testing.assert_array_equal(back.beta_, spec.beta_)
    data = json.loads(path.read_text())
    for key in ("RKME_IMAGE_VERSION", "z", "beta", "n_models", "model_config", "type", "schema_version", "checksum"):
        assert key in data
    data["beta"][0] += 1e-3
    path.write_text(json.dumps(data))
    with pytest.raises(SpecFileError, match="checksum"):
        load_spec(path)


def test_reference_format_file_loads(tmp_path: Path, market) -> None:  # type: ignore[no-untyped-def]
    spec = market[3]
    ref = {  # the reference's documented layout: no schema_version, no checksum, no num_points
        "RKME_IMAGE_VERSION": 1, "msg": None, "z": spec.z_.tolist(), "beta": spec.beta_.tolist(), "n_models": 16,
        "model_config": {"k": 2, "mu": 0, "sigma": None, "net_width": 128, "net_depth": 3},
        "type": "RKMEImageSpecification",
    }
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref, separators=(",", ":")))
    back = load_spec(path)
    assert isinstance(back, RKMEImageSpec) and back.n_models == 16 and back.depth == 3
    assert back.dist(spec) < 1e-6 * spec.inner_prod(spec)
    bad = dict(ref, z=np.zeros((2, 1, 16, 16)).tolist(), beta=[0.5, 0.5])
    path.write_text(json.dumps(bad))
    with pytest.raises(SpecFileError, match="32 x 32"):
        load_spec(path)
