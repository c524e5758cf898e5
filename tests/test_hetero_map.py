"""The label-free column map on real numbers (no embedder: name similarities given directly)."""

from __future__ import annotations

import numpy as np
import pytest

from lwdock.errors import ArtifactError
from lwdock.hetero.colmap import ColumnMap, build_map
from lwdock.hetero.importance import damage, importance_from_outputs, perturbation_batch
from lwdock.hetero.matching import AFFINE, EXP_AFFINE, IDENTITY, match_columns
from lwdock.hetero.stats import fit_stats, stats_from_json, stats_to_json


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    c = np.exp(0.5 * rng.normal(size=n) + 2)  # positive, skewed
    return np.column_stack([a, b, c])


def test_permuted_columns_with_equal_names_map_exactly():
    X = _data()
    lw = fit_stats(X, ["a", "b", "c"], K=60)
    order = [2, 0, 1]
    user = fit_stats(X[:, order], ["c", "a", "b"], K=60)
    S = np.array([[0.2, 0.1, 1.0], [1.0, 0.3, 0.1], [0.3, 1.0, 0.2]])  # user x learnware
    pairs = match_columns(user, lw, S)
    assert sorted((p.user, p.learnware) for p in pairs) == [(0, 2), (1, 0), (2, 1)]
    assert all(p.kind == IDENTITY and p.same for p in pairs)
    cmap = build_map(user, lw, pairs)
    np.testing.assert_allclose(cmap.transform(X[:, order]), X)


def test_units_and_logs_are_undone_and_missing_columns_imputed():
    X = _data()
    lw = fit_stats(X, ["a", "b", "c"], K=80)
    # the user has a in other units (x 1000, shifted) and log(c); no b
    Xu = np.column_stack([1000 * X[:, 0] + 5000, np.log(X[:, 2])])
    user = fit_stats(Xu, ["a (milli)", "log c"], K=80)
    S = np.array([[0.9, 0.5, 0.1], [0.1, 0.2, 0.8]])
    pairs = {p.learnware: p for p in match_columns(user, lw, S)}
    assert set(pairs) == {0, 2} and pairs[0].kind == AFFINE and pairs[2].kind == EXP_AFFINE  # user log c -> c
    out = build_map(user, lw, list(pairs.values())).transform(Xu)
    assert np.corrcoef(out[:, 0], X[:, 0])[0, 1] > 0.999 and abs(out[:, 0].std() / X[:, 0].std() - 1) < 0.1
    assert np.corrcoef(out[:, 2], X[:, 2])[0, 1] > 0.9
    # b is imputed from a through the learnware's own covariance (corr 0.8)
    assert np.corrcoef(out[:, 1], X[:, 1])[0, 1] > 0.7
    assert np.sqrt(np.mean((out[:, 1] - X[:, 1]) ** 2)) < np.sqrt(np.mean((X[:, 1].mean() - X[:, 1]) ** 2))


def test_map_round_trips_as_arrays_and_rejects_bad_ones():
    X = _data()
    lw = fit_stats(X, ["a", "b", "c"], K=40)
    user = fit_stats(X[:, :2], ["a", "b"], K=40)
    cmap = build_map(user, lw, match_columns(user, lw, np.array([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1]])))
    again = ColumnMap.from_arrays(cmap.arrays("m0_"), "m0_")
    np.testing.assert_array_equal(again.transform(X[:, :2]), cmap.transform(X[:, :2]))
    bad = cmap.arrays()
    bad["src"] = np.array([0, 5, -1])
    with pytest.raises(ArtifactError):
        ColumnMap.from_arrays(bad)


def test_importance_finds_the_column_the_model_uses():
    X = _data()
    stats = fit_stats(X, ["a", "b", "c"], K=50)
    batch = perturbation_batch(stats)
    assert batch.shape == (4 * 50, 3)
    out = (3 * batch[:, 2])[:, None]  # a model that reads c only
    imp = importance_from_outputs(out, stats)
    assert imp[2] > 10 * max(imp[0], imp[1])
    assert damage(imp, np.array([True, True, False]))[1] > 0.99
    assert damage(imp, np.array([False, False, True]))[1] < 0.05


def test_packed_stats_round_trip_and_bounds():
    from lwdock.errors import InputDataError

    stats = fit_stats(_data(), ["a", "b", "c"], K=30)
    again = stats_from_json(stats_to_json(stats))
    assert again.names == stats.names and np.array_equal(again.z, stats.z)
    with pytest.raises(InputDataError):
        stats_from_json(b'{"format": "lwdock.hetero-stats", "version": 1, "z": [[1, 2]], "beta": [1], '
                        b'"mean": [0, 0], "sd": [1, -1], "names": ["a", "b"]}')
