"""End to end through a real dock: learnware zips built here, trusted and sandboxed runs,
artifact round trips, tampering, and the ``reuse``/``predict`` commands."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from _factory import semantic_dict
from test_reuse_market import DIM, N_CLASSES, Market

from lwdock.reuse.api import LearnwareChangedError, load_ensemble, reuse

MODEL_CODE = '''
import os

import numpy as np


class Model:
    """Softmax over the classes it was trained on; 0 for the others."""

    def __init__(self, n_classes=10):
        here = os.path.dirname(os.path.abspath(__file__))
        with np.load(os.path.join(here, "params.npz"), allow_pickle=False) as z:
            self.coef, self.intercept, self.classes = z["coef"], z["intercept"], z["classes"]
        self.input_shape = (self.coef.shape[1],)
        self.output_shape = (n_classes,)
        self.n_classes = n_classes

    def predict(self, X):
        z = np.asarray(X, dtype=float) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out = np.zeros((len(z), self.n_classes))
        out[:, self.classes] = e / e.sum(axis=1, keepdims=True)
        return out
'''


def learnware_zip(path, clf, X_train, name):
    from lwdock.spec.rkme_table import RKMETableSpec

    params = io.BytesIO()
    np.savez(params, coef=clf.coef_, intercept=clf.intercept_, classes=clf.classes_)
    spec_file = path.with_suffix(".spec.json")
    RKMETableSpec(K=30, random_state=0).fit(X_train).save(spec_file)
    yaml = (
        "model:\n  class_name: Model\n  module_path: __init__.py\n  kwargs: {n_classes: %d}\n"
        "stat_specifications:\n  - module_path: learnware.specification\n"
        "    class_name: RKMETableSpecification\n    file_name: rkme.json\n    kwargs: {}\n" % N_CLASSES
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("learnware.yaml", yaml)
        zf.writestr("__init__.py", MODEL_CODE)
        zf.writestr("params.npz", params.getvalue())
        zf.writestr("rkme.json", spec_file.read_text())
        zf.writestr("semantic_specification.json", json.dumps(semantic_dict(name=name, d=DIM, out=N_CLASSES)))
    return path


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A dock with 4 market learnwares, submitted without running models (fast)."""
    from lwdock import Dock

    base = tmp_path_factory.mktemp("reuse-dock")
    market = Market(seed=0, n_learnwares=4)
    dock = Dock.init(base / "dock")
    ids = []
    for i, (clf, X) in enumerate(zip(market.models, market.train)):
        entry = dock.submit(learnware_zip(base / f"lw{i}.zip", clf, X, f"lw{i}"), alias=f"lw{i}", run_model=False)
        ids.append(entry.id)
    X, y = market.user(400)
    return dock, ids, market, X, y, base


def test_trusted_round_trip_each_method(filled, tmp_path):
    dock, ids, market, X, y, _ = filled
    for method in ("average", "job-selector", "ensemble-pruning", "feature-augment"):
        labeled = (X[:60], y[:60]) if method in ("ensemble-pruning", "feature-augment") else None
        with reuse(dock, ids, method, labeled, data=X[:200], trusted=True, herding_num=200) if method == "job-selector" else reuse(dock, ids, method, labeled, data=X[:200], trusted=True) as ens:
            direct = ens.predict(X)
            direct_p = ens.predict_proba(X)
            path = ens.save(tmp_path / f"{method}.lwe")
        with load_ensemble(path, dock, trusted=True) as again:
            np.testing.assert_array_equal(again.predict(X, chunk_size=97), direct)
            np.testing.assert_array_equal(again.predict_proba(X), direct_p)
            assert again.ids == ids and again.method == method
        # trusted models compute exactly what the market models compute
        if method == "average":
            expected = np.mean([market.predictors()[i].predict(X) for i in range(4)], axis=0).argmax(1)
            np.testing.assert_array_equal(direct, expected)


def test_artifact_is_json_plus_arrays_without_pickles(filled, tmp_path):
    dock, ids, _, X, y, _ = filled
    with reuse(dock, ids, "ensemble-pruning", (X[:60], y[:60]), trusted=True) as ens:
        path = ens.save(tmp_path / "e.lwe")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "ensemble.json"]
        doc = json.loads(zf.read("ensemble.json"))
        arrays = np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False)
        assert all(arrays[k].dtype != object for k in arrays.files)
    assert doc["format"] == "lwdock-ensemble" and doc["method"] == "ensemble-pruning"
    assert [lw["id"] for lw in doc["learnwares"]] == ids
    assert doc["input_schema"]["n_features"] == DIM and doc["lwdock_version"]
    assert doc["task"] == {"kind": "classification", "n_classes": N_CLASSES, "classes": [str(c) for c in range(N_CLASSES)]}
    assert doc["report"]["baseline"] is not None


def test_search_result_selection_uses_mixture_weights(filled):
    dock, ids, _, X, _, base = filled
    result = {"singles": [{"id": ids[2], "score": 0.9}], "mixture": {"ids": [ids[0][:10], "lw1"], "weights": [0.25, 0.75]}}
    path = base / "search.json"
    path.write_text(json.dumps(result))
    with reuse(dock, str(path), "average", data=X, trusted=True) as ens:
        assert ens.ids == ids[:2]
        np.testing.assert_allclose(ens.reuser.weights_, [0.25, 0.75])
    with reuse(dock, {"singles": [{"id": ids[2]}], "mixture": {}}, "average", data=X, trusted=True) as ens:
        assert ens.ids == [ids[2]]


def test_tampered_or_missing_learnware_is_refused(filled, tmp_path):
    from lwdock.errors import NotFoundError
    from lwdock import Dock

    _, _, market, X, y, base = filled
    dock = Dock.init(tmp_path / "dock2")
    zips = [learnware_zip(tmp_path / f"t{i}.zip", market.models[i], market.train[i], f"t{i}") for i in range(2)]
    ids = [dock.submit(z, run_model=False).id for z in zips]
    with reuse(dock, ids, "average", data=X, trusted=True) as ens:
        path = ens.save(tmp_path / "t.lwe")
    blob = dock.blob_path(ids[1])
    os.chmod(blob, 0o644)
    with zipfile.ZipFile(blob, "a") as zf:  # a changed model file in the stored zip
        zf.writestr("evil.py", "import os\n")
    with pytest.raises(LearnwareChangedError, match="changed"):
        load_ensemble(path, dock, trusted=True)
    dock.remove(ids[1])
    with pytest.raises(NotFoundError, match="not in the dock"):
        load_ensemble(path, dock, trusted=True)


def test_sandboxed_runner_matches_trusted(filled, tmp_path):
    pytest.importorskip("lwdock.check.runner")
    dock, ids, _, X, y, _ = filled
    with reuse(dock, ids[:2], "average", data=X, trusted=True) as ens:
        trusted = ens.predict_proba(X)
        path = ens.save(tmp_path / "s.lwe")
    with load_ensemble(path, dock) as ens:  # default: each model in a sandboxed worker
        np.testing.assert_allclose(ens.predict_proba(X, chunk_size=150), trusted, rtol=0, atol=1e-12)
        assert all(type(h).__name__ == "WorkerPredictor" for h in ens.reuser.learnwares)


def test_cli_reuse_then_predict(filled, tmp_path):
    from typer.testing import CliRunner

    from lwdock.cli import app

    dock, ids, _, X, y, _ = filled
    train = tmp_path / "train.csv"
    header = ",".join([f"f{j}" for j in range(DIM)] + ["label"])
    np.savetxt(train, np.column_stack([X[:60], y[:60]]), delimiter=",", header=header, comments="")
    test = tmp_path / "test.npy"
    np.save(test, X)
    lwe, preds, direct = tmp_path / "e.lwe", tmp_path / "p.csv", tmp_path / "direct.npy"
    runner = CliRunner()
    base = ["--dock", str(dock.path)]
    r = runner.invoke(app, [*base, "reuse", "--ids", ",".join(["lw0", "lw1", ids[2][:8]]), "--method", "feature-augment",
                            "--labeled", str(train), "--label-column", "label", "-o", str(lwe), "--data", str(test),
                            "--preds", str(direct), "--trusted", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["method"] == "feature-augment" and out["report"]["n_labeled"] == 60
    r = runner.invoke(app, [*base, "predict", str(lwe), str(test), "-o", str(preds), "--trusted"])
    assert r.exit_code == 0, r.output
    got = np.loadtxt(preds, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(got, np.load(direct))
    # without --trusted (and no runner in the way) it still predicts, in the sandbox
    r = runner.invoke(app, [*base, "reuse", "--ids", "lw0", "-o", str(lwe)])
    assert r.exit_code == 0, r.output


def _cli(dock, *args):
    from typer.testing import CliRunner

    from lwdock.cli import app

    return CliRunner().invoke(app, ["--dock", str(dock.path), *args])


@pytest.fixture(scope="module")
def saved(filled, tmp_path_factory):
    dock, ids, _, X, _, _ = filled
    path = tmp_path_factory.mktemp("saved") / "avg.lwe"
    with reuse(dock, ids, "average", data=X, trusted=True) as ens:
        ens.save(path)
    return path


def test_cli_bad_inputs_get_clear_errors(filled, saved, tmp_path):
    dock, ids, _, X, y, _ = filled
    out = str(tmp_path / "p.csv")
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, X[:, :-1])
    r = _cli(dock, "predict", str(saved), str(narrow), "-o", out, "--trusted")
    assert r.exit_code == 7 and f"has {DIM - 1} features" in r.output and f"expect {DIM}" in r.output
    text = tmp_path / "text.csv"
    text.write_text("a,b\n" + "\n".join(",".join(["x"] * 2) for _ in range(3)) + "\n")
    r = _cli(dock, "predict", str(saved), str(text), "-o", out, "--trusted")
    assert r.exit_code == 7 and "non-numeric" in r.output
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array([["a"] * DIM]))
    r = _cli(dock, "predict", str(saved), str(strings), "-o", out, "--trusted")
    assert r.exit_code == 7 and "numeric" in r.output
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = _cli(dock, "predict", str(saved), str(empty), "-o", out, "--trusted")
    assert r.exit_code == 7 and "empty" in r.output
    r = _cli(dock, "predict", str(saved), str(narrow), "-o", str(tmp_path / "p.parquet"), "--trusted")
    assert r.exit_code == 2 and ".csv or .npy" in r.output


def test_cli_labels_must_match_the_task(filled, tmp_path):
    dock, ids, _, X, y, _ = filled
    lab = tmp_path / "lab.csv"
    cases = {
        "fractional": (y[:40] + 0.5, "regression target"),
        "out of range": (y[:40] + N_CLASSES, "not among the learnwares' classes: 10"),
    }
    for _, (labels, msg) in cases.items():
        np.savetxt(lab, np.column_stack([X[:40], labels]), delimiter=",")
        r = _cli(dock, "reuse", "--ids", "lw0,lw1", "--method", "ensemble-pruning", "--labeled", str(lab),
                 "-o", str(tmp_path / "x.lwe"), "--trusted")
        assert r.exit_code == 7 and msg in r.output, r.output
    r = _cli(dock, "reuse", "--ids", "lw0,lw1", "--method", "feature-augment", "-o", str(tmp_path / "x.lwe"), "--trusted")
    assert r.exit_code == 2 and "needs labelled data" in r.output
    r = _cli(dock, "reuse", "--ids", "lw0", "--method", "stacking", "-o", str(tmp_path / "x.lwe"), "--trusted")
    assert r.exit_code == 2 and "unknown reuse method" in r.output
    np.savetxt(lab, np.column_stack([X[:40], y[:40]]), delimiter=",")
    r = _cli(dock, "reuse", "--ids", "lw0", "--method", "ensemble-pruning", "--labeled", str(lab),
             "--label-column", "nope", "-o", str(tmp_path / "x.lwe"), "--trusted")
    assert r.exit_code == 2 and "label column" in r.output


def test_learnwares_with_other_widths_are_refused(filled, tmp_path):
    from _factory import learnware_zip as small_zip

    from lwdock.errors import UsageError

    dock, ids, _, X, _, _ = filled
    other = dock.submit(small_zip(tmp_path / "small.zip", d=2), run_model=False, exist_ok=True).id
    try:
        with pytest.raises(UsageError, match="different"):
            reuse(dock, [ids[0], other], "average", data=X, trusted=True)
    finally:
        dock.remove(other)


def test_corrupt_artifacts_are_refused(filled, saved, tmp_path):
    from lwdock.reuse.artifact import ArtifactError

    dock = filled[0]
    bad = tmp_path / "bad.lwe"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a zip"):
        load_ensemble(bad, dock, trusted=True)
    with zipfile.ZipFile(saved) as zf:
        doc = json.loads(zf.read("ensemble.json"))
        arrays = zf.read("arrays.npz")
    doc["format_version"] = 99
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ensemble.json", json.dumps(doc))
        zf.writestr("arrays.npz", arrays)
    with pytest.raises(ArtifactError, match="format version 99"):
        load_ensemble(bad, dock, trusted=True)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    doc["format_version"] = 1
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ensemble.json", json.dumps(doc))
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as npz:
            npz.writestr("weights.npy", pickled.getvalue())
        zf.writestr("arrays.npz", inner.getvalue())
    with pytest.raises(ArtifactError, match="unreadable"):
        load_ensemble(bad, dock, trusted=True)
