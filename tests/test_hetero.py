"""Heterogeneous feature spaces end to end: learnwares on column subsets of breast_cancer, users
with other overlapping subsets under other names (UCI CSV style) in another order."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from _hetero_market import CancerMarket, learnware_zip, uci_name, write_csv

from lwdock.hetero.names import name_embedder_available

pytestmark = pytest.mark.skipif(not name_embedder_available(), reason="needs the MiniLM name embedder (text extra)")

@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """Six sandbox-checked learnwares (column importance measured at submit) and one user."""
    from lwdock import Dock

    base = tmp_path_factory.mktemp("hetero")
    m = CancerMarket(seed=0, n_learnwares=6)
    dock = Dock.init(base / "dock")
    ids, models = [], []
    for i in range(len(m.subsets)):
        X, y, cols = m.learnware_data(i)
        z, model = learnware_zip(base / f"lw{i}.zip", X, y, cols, f"lw{i}")
        ids.append(dock.submit(z, alias=f"lw{i}").id)
        models.append(model)
    cols = list(m.subsets[0][:6]) + list(m.subsets[1][:3])
    X, y, names = m.user(cols)
    csv = write_csv(base / "user.csv", X, names)
    return dock, ids, models, m, X, y, names, csv, base


def test_index_measures_column_importance_at_submit(market):
    dock, ids, *_ = market
    index = json.loads((dock.path / "hetero" / "index.json").read_text())
    recs = {r["id"]: r for r in index["learnwares"]}
    assert set(recs) == set(ids)
    for r in recs.values():
        assert r["eligible"] and r["importance"] == "model" and len(r["imp"]) == 10
        assert max(r["imp"]) > 0 and len(set(np.round(r["imp"], 9))) > 1  # the model's own, not uniform


def test_search_ranks_overlapping_learnwares_first_and_names_shared_columns(market):
    from lwdock.search.api import search

    dock, ids, _, m, X, y, names, csv, _ = market
    result = search(dock, data=csv, k=6)
    assert not result.singles  # nobody has the user's 9 columns: nothing on the exact path
    hits = result.heterogeneous
    assert len(hits) >= 3 and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    damages = [h.damage for h in hits]
    assert damages == sorted(damages) and all(0 <= d <= 1 for d in damages)
    top = [h.id for h in hits[:3]]
    assert ids[0] in top and ids[1] in top
    lw0 = next(h for h in hits if h.id == ids[0])
    found = {(c["user"], c["learnware"]) for c in lw0.shared_columns}
    truth = {(uci_name(m.names[c]), m.names[c]) for c in m.subsets[0][:6]}
    assert len(truth & found) >= 5, (truth, found)  # the six columns taken from lw0, under their other names
    d = result.to_dict()
    assert d["heterogeneous"][0]["heterogeneous"] is True and d["heterogeneous"][0]["shared_columns"]


def test_unrelated_columns_get_no_shared_features(market):
    from lwdock.search.api import search

    dock, *_, base = market
    rng = np.random.default_rng(0)
    csv = write_csv(base / "unrelated.csv", rng.normal(size=(80, 3)),
                    ["favourite colour code", "shoe size (EU)", "number of siblings"])
    result = search(dock, data=csv)
    assert result.empty and not result.heterogeneous
    assert "no shared features" in result.explanation


def test_copied_dock_gives_the_same_hetero_search(market, tmp_path):
    from lwdock import Dock
    from lwdock.search.api import search

    dock, *_, csv, _ = market
    first = search(dock, data=csv).to_dict()["heterogeneous"]
    shutil.copytree(dock.path, tmp_path / "copy")
    again = search(Dock(tmp_path / "copy"), data=csv).to_dict()["heterogeneous"]
    assert first == again and first


def _accuracy(ens, X, y):
    return float((ens.predict(X) == y).mean())


def test_feature_align_beats_the_mean_learnware_and_round_trips(market, tmp_path):
    from lwdock.reuse.api import load_ensemble, reuse
    from lwdock.search.api import search

    dock, ids, _, _, X, y, names, csv, _ = market
    found = search(dock, data=csv).to_dict()
    singles = []
    for lw in ids:
        with reuse(dock, [lw], "feature-align", data=X, columns=names, trusted=True) as ens:
            singles.append(_accuracy(ens, X, y))
    with reuse(dock, found, "feature-align", data=X, columns=names, trusted=True) as ens:
        acc = _accuracy(ens, X, y)
        assert len(ens.ids) == 5 and ens.method == "feature-align"
        assert ens.describe()["learnwares"][0]["shared_columns"]
        pred = ens.predict(X)
        path = ens.save(tmp_path / "fa.lwe")
    assert acc > np.mean(singles), (acc, singles)
    with load_ensemble(path, dock, trusted=True) as again:  # the maps are arrays in the artifact
        np.testing.assert_array_equal(again.predict(X), pred)
        with pytest.raises(Exception, match="9"):
            again.predict(X[:, :5])


def test_align_then_augment_beats_self_trained_with_30_labels(market):
    from lwdock.reuse.api import reuse
    from lwdock.reuse.baseline import BaselineModel

    dock, ids, _, _, X, y, names, _, _ = market
    aug, own = [], []
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(y))
        lab, test = order[:30], order[30:]
        with reuse(dock, ids, "feature-augment", (X[lab], y[lab]), columns=names, trusted=True) as ens:
            assert ens.method == "aligned-feature-augment"
            aug.append(_accuracy(ens, X[test], y[test]))
        own.append(float((BaselineModel(task="classification", n_classes=2).fit(X[lab], y[lab]).predict(X[test]) == y[test]).mean()))
    assert np.mean(aug) > np.mean(own), (aug, own)


def test_pruning_aligns_heterogeneous_learnwares(market):
    from lwdock.reuse.api import reuse

    dock, ids, _, _, X, y, names, _, _ = market
    with reuse(dock, ids, "ensemble-pruning", (X[:40], y[:40]), columns=names, trusted=True) as ens:
        assert ens.method == "aligned-ensemble-pruning"
        assert _accuracy(ens, X[40:], y[40:]) > 0.85


def test_heterogeneous_reuse_without_column_names_is_refused(market):
    from lwdock.errors import UsageError
    from lwdock.reuse.api import reuse

    dock, ids, _, _, X, *_ = market
    with pytest.raises(UsageError, match="names of your columns"):
        reuse(dock, ids[:2], "feature-align", data=X, trusted=True)


def test_cli_search_reuse_predict(market, lwdock_bin, tmp_path):
    dock, ids, _, _, X, y, names, csv, _ = market

    def run(*args):
        return subprocess.run([lwdock_bin, "--dock", str(dock.path), *args], capture_output=True, text=True, timeout=600)

    found = run("--json", "search", "--data", str(csv))
    assert found.returncode == 0, found.stderr
    doc = json.loads(found.stdout)
    assert doc["heterogeneous"] and doc["heterogeneous"][0]["heterogeneous"] is True
    (tmp_path / "s.json").write_text(found.stdout)
    built = run("reuse", "--from-search", str(tmp_path / "s.json"), "-m", "feature-align", "--data", str(csv),
                "-o", str(tmp_path / "e.lwe"), "--preds", str(tmp_path / "p0.csv"))
    assert built.returncode == 0, built.stderr
    done = run("predict", str(tmp_path / "e.lwe"), str(csv), "-o", str(tmp_path / "p.csv"))
    assert done.returncode == 0, done.stderr
    pred = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(pred, np.loadtxt(tmp_path / "p0.csv", delimiter=",", skiprows=1))
    assert (pred == y).mean() > 0.8
    human = run("search", "--data", str(csv))
    assert "heterogeneous" in human.stdout and "shares:" in human.stdout


def test_doctor_rebuilds_a_lost_hetero_index(market, tmp_path):
    from lwdock import Dock

    dock, ids, *_ = market
    shutil.copytree(dock.path, tmp_path / "copy")
    copy = Dock(tmp_path / "copy")
    before = json.loads((copy.path / "hetero" / "index.json").read_text())
    (copy.path / "hetero" / "index.json").unlink()
    for f in (copy.path / "hetero" / "lw").glob("*.npz"):
        f.unlink()
    report = copy.doctor().to_dict()
    assert any("hetero index" in json.dumps(x) for x in report.values()), report
    after = json.loads((copy.path / "hetero" / "index.json").read_text())
    assert after == before  # the same records, importance measured again in the sandbox
    assert copy.doctor(repair=False).to_dict() == Dock(tmp_path / "copy").doctor(repair=False).to_dict()


def test_trained_map_is_deterministic_and_adds_a_ranking_term(market, tmp_path):
    from lwdock import Dock
    from lwdock.hetero.encoder import MapConfig
    from lwdock.hetero.mapping import train_map
    from lwdock.hetero.maintain import open_store
    from lwdock.search.api import search

    dock, *_, csv, _ = market
    weights = []
    for name in ("a", "b"):
        shutil.copytree(dock.path, tmp_path / name)
        copy = Dock(tmp_path / name)
        manifest = train_map(copy, MapConfig(steps=60, batch=64), force=True)
        assert manifest["learnwares"] == 6 and manifest["loss_end"] < manifest["loss_start"]
        weights.append(open_store(copy).read_weights())
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        np.testing.assert_array_equal(weights[0][k], weights[1][k])
    hits = search(Dock(tmp_path / "a"), data=csv).heterogeneous
    assert hits and all(h.map_mmd2 is not None and h.map_mmd2 >= 0 for h in hits)
