"""Identification with no kernel knowledge (issue 13): real data, default settings, no gamma anywhere.

Every market here is built as a user would: `lwdock pack` from raw training data with no gamma flag,
`lwdock init` with no flag, `lwdock search --data` with no flag. The assertions are on rankings
the data decide (a user drawn from learnware j's distribution must find j first).
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search_fixtures import zip_learnware
from typer.testing import CliRunner

from lwdock.cli import app
from lwdock.errors import ExitCode
from lwdock.search import cache
from lwdock.search.api import search, search_cache
from lwdock.spec.rkme_table import RKMETableSpec

GROUPS = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 0, 6)]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y  # raw pixel values 0..16


def _pack_market(tmp_path, X, y, units=None):
    """One learnware per digit group, packed from raw rows by `lwdock pack` with no gamma."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    units = np.ones(X.shape[1]) if units is None else units
    dock = tmp_path / "dock"
    assert _cli("--dock", dock, "init").exit_code == 0
    ids, users = [], []
    for j, g in enumerate(GROUPS):
        idx = np.nonzero(np.isin(y, g))[0]
        train, user = idx[: len(idx) // 2], idx[len(idx) // 2:]
        np.save(tmp_path / f"d{j}.npy", X[train] * units)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X[train] * units, y[train])
        (tmp_path / f"m{j}.pkl").write_bytes(pickle.dumps(model))
        r = _cli("pack", "--model", tmp_path / f"m{j}.pkl", "--data", tmp_path / f"d{j}.npy", "--name", f"digits {g}",
                 "--task", "Classification", "--output-dim", "10", "-K", "40", "-o", tmp_path / f"lw{j}.zip")
        assert r.exit_code == 0, r.output
        r = _cli("--dock", dock, "--quiet", "submit", tmp_path / f"lw{j}.zip", "--no-run")
        assert r.exit_code == 0, r.output
        ids.append(r.stdout.split()[0])
        np.save(tmp_path / f"u{j}.npy", X[user] * units)
        users.append(tmp_path / f"u{j}.npy")
    return dock, ids, users


@pytest.mark.parametrize("scale", ["raw", "thousands"])
def test_defaults_find_the_right_learnware_on_unscaled_data(tmp_path, scale):
    X, y = _digits()
    # "thousands": every pixel column in its own unit, from 1e2 to 1e4 (mixed units, values in the thousands)
    units = None if scale == "raw" else np.geomspace(1e2, 1e4, X.shape[1])[np.random.default_rng(0).permutation(64)]
    dock, ids, users = _pack_market(tmp_path, X, y, units)
    tops = []
    for j, u in enumerate(users):
        r = _cli("--dock", dock, "search", "--data", u, "--include-unchecked", "--rerank", "mmd", "--json",
                 "--fail-if-empty")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert not out["cannot_discriminate"] and out["signals"]["flags"] in ([], ["partly_covered"])
        scores = [s["score"] for s in out["singles"]]
        assert scores == sorted(scores, reverse=True)
        tops.append(out["singles"][0]["id"])
    assert tops == ids  # different users, different (correct) rankings


def test_unseen_data_is_flagged_and_fail_if_empty_exits_9(tmp_path):
    X, y = _digits()
    dock, ids, _ = _pack_market(tmp_path, X, y)
    np.save(tmp_path / "inverted.npy", 16.0 - X[:200])
    r = _cli("--dock", dock, "search", "--data", tmp_path / "inverted.npy", "--include-unchecked", "--rerank", "mmd",
             "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["cannot_discriminate"] and "no_match" in out["signals"]["flags"]
    assert out["signals"]["coverage"] < 0.5
    r = _cli("--dock", dock, "search", "--data", tmp_path / "inverted.npy", "--include-unchecked", "--rerank", "mmd",
             "--fail-if-empty")
    assert r.exit_code == ExitCode.NO_RESULTS == 9
    assert "no learnware saw data like yours" in r.stderr


def test_specs_fitted_with_any_gamma_are_all_findable(tmp_path):
    """One dock, specs fitted three ways (automatic, an expert's gamma, the reference's 0.1 on raw
    pixels): each learnware is found first by users of its own distribution."""
    from lwdock import Dock

    X, y = _digits()
    dock = Dock.init(tmp_path / "dock")
    fits = [dict(gamma=None), dict(gamma=0.002), dict(gamma=0.1), dict(gamma=None)]
    ids, users = [], []
    for j, (g, params) in enumerate(zip(GROUPS, fits)):
        idx = np.nonzero(np.isin(y, g))[0]
        spec = RKMETableSpec(K=30, random_state=j, **params).fit(X[idx[: len(idx) // 2]])
        z = zip_learnware(tmp_path / f"lw{j}.zip", spec, f"digits {g}")
        ids.append(dock.submit(z, run_model=False).id)
        users.append(X[idx[len(idx) // 2:]])
    for j, U in enumerate(users):
        # users fit their own spec with the defaults, or the reference's gamma 0.1
        for params in (dict(), dict(gamma=0.1)):
            res = search(dock, RKMETableSpec(K=30, random_state=7, **params).fit(U), include_unchecked=True,
                         rerank="mmd", k=4)
            assert res.ids[0] == ids[j], (j, params, res.ids)
            assert not res.cannot_discriminate
            # gamma 0.1 on raw pixels is a degenerate fit: accepted, ranked, and labelled as such
            assert (res.singles[0].spec_quality == "degenerate-gamma") == (fits[j].get("gamma") == 0.1)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_scores_are_monotone_in_rank(seed, n):
    from lwdock.search.store import SegmentStore  # noqa: F401 - the store the benchmarks search

    rng = np.random.default_rng(seed)
    store = _random_store(rng, n)
    U = rng.normal(rng.uniform(-3, 3, 3), 1.0, size=(60, 3))
    res = search_cache(store, RKMETableSpec(K=8, random_state=0).fit(U), k=n, max_mixture=1)
    scores = [s.score for s in res.singles]
    assert len(scores) == n and scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


_STORES: dict[tuple[int, int], object] = {}


def _random_store(rng, n):
    import tempfile
    from pathlib import Path

    from lwdock import Dock

    key = (n, int(rng.integers(3)))
    if key not in _STORES:
        base = Path(tempfile.mkdtemp(prefix="lwdock-mono-"))
        dock = Dock.init(base / "dock")
        r = np.random.default_rng(key[1])
        for i in range(n):
            X = r.normal(r.uniform(-3, 3, 3), r.uniform(0.3, 2.0), size=(80, 3)) * r.uniform(0.5, 50.0)
            dock.submit(zip_learnware(base / f"lw{i}.zip", RKMETableSpec(K=8, random_state=i).fit(X), f"lw {i}"),
                        run_model=False)
        with dock.lock():
            _STORES[key] = cache.ensure_current(dock, dock.entries())
    return _STORES[key]


def test_info_and_idempotent_init(tmp_path):
    X, y = _digits()
    dock, ids, _ = _pack_market(tmp_path, X, y)
    r = _cli("--dock", dock, "init")
    assert r.exit_code == 0, r.output  # same settings: a no-op
    r = _cli("--dock", dock, "init", "--gamma", "0.5")
    assert r.exit_code == ExitCode.CONFLICT and r.stderr.startswith("error:")
    r = _cli("--dock", dock, "info", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["path"] == str(dock) and info["learnwares"] == len(ids) and info["layout_version"] >= 1
    assert info["by_dimension"] == {"table 64": len(ids)} and info["disk_bytes"] > 0
    (kern,) = info["search_kernels"]
    assert kern["learnwares"] == len(ids) and kern["kernel"]["name"] == "rbf"
    # the dock's median heuristic on standardised pixels: gamma about 1 / (2 x live columns)
    assert 0.2 < kern["kernel"]["gamma"] * 2 * kern["kernel"]["live_columns"] < 5
    r = _cli("--dock", dock, "info")
    assert r.exit_code == 0 and "table/64" in r.stdout and "rbf gamma" in r.stdout
