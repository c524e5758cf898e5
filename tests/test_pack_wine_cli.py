"""Issue 14 end to end, through the installed console script: wine with string labels and a header,
packed as a scikit-learn Pipeline, checked, submitted, searched, reused and applied, with the
columns in another order, a pandas default header, and columns missing."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lwdock.errors import ExitCode

WINES = ("barolo", "grignolino", "barbera")
LWDOCK = str(Path(sys.executable).parent / "lwdock")


def _write_csv(path: Path, header: list[str] | None, rows: np.ndarray, labels=None, index: bool = False) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if header is not None:
            w.writerow(([""] if index else []) + header + (["label"] if labels is not None else []))
        for i, row in enumerate(rows):
            w.writerow(([i] if index else []) + [repr(float(v)) for v in row] + ([labels[i]] if labels is not None else []))
    return path


class Wine:
    """The data, the in-process model, and the dock every test of this module reads."""

    def __init__(self, root: Path):
        data = load_wine()
        self.cols = [n.replace("/", "_") for n in data.feature_names]
        y = np.array([WINES[i] for i in data.target])
        order = np.random.default_rng(0).permutation(len(y))
        tr, te = order[:120], order[120:]
        self.X_test, self.y_test = data.data[te], y[te]
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(data.data[tr], y[tr])
        self.root = root
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("LWDOCK_")},
                    "XDG_CACHE_HOME": str(root / "cache"), "LWDOCK_NO_PROGRESS": "1",
                    "LWDOCK_HOME": str(root / "dock")}
        if os.environ.get("LWDOCK_SANDBOX"):
            self.env["LWDOCK_SANDBOX"] = os.environ["LWDOCK_SANDBOX"]
        with open(root / "model.pkl", "wb") as fh:
            pickle.dump(self.model, fh)
        self.train = _write_csv(root / "train.csv", self.cols, data.data[tr], y[tr])
        self.test = _write_csv(root / "test.csv", self.cols, self.X_test)
        self.perm = [int(j) for j in np.random.default_rng(1).permutation(len(self.cols))]
        self.reordered = _write_csv(root / "test_reordered.csv", [self.cols[j] for j in self.perm],
                                    self.X_test[:, self.perm])
        self.labeled = _write_csv(root / "labeled.csv", self.cols, self.X_test[:20], self.y_test[:20])

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([LWDOCK, *args], capture_output=True, text=True, timeout=600, env=self.env,
                              cwd=self.root)


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    w = Wine(tmp_path_factory.mktemp("wine"))
    res = w.run("pack", "--model", "model.pkl", "--data", "train.csv", "--label-column", "label",
                "--task", "Classification", "--name", "wine", "-o", "wine.zip", "--json")
    assert res.returncode == 0, res.stderr
    w.packed = json.loads(res.stdout)
    assert w.run("init").returncode == 0
    res = w.run("submit", "wine.zip", "-q")
    assert res.returncode == 0, res.stderr
    w.id = res.stdout.strip()
    return w


def _accuracy(path: Path, y: np.ndarray) -> float:
    with open(path) as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "prediction"
    return float(np.mean(np.array([r[0] for r in rows[1:]]) == y))


def test_pack_keeps_string_labels_and_column_names(wine):
    assert wine.packed["classes"] == sorted(WINES) and wine.packed["columns"] == wine.cols
    assert wine.packed["dim"] == 13 and wine.packed["output_dim"] == 3
    with zipfile.ZipFile(wine.root / "wine.zip") as zf:
        semantic = json.loads(zf.read("semantic_specification.json"))
        spec = json.loads(zf.read("rkme.json"))
    assert semantic["Output"]["Description"] == {str(i): c for i, c in enumerate(sorted(WINES))}
    assert semantic["Input"]["Description"] == {str(i): c for i, c in enumerate(wine.cols)}
    assert spec["feature_names"] == wine.cols and len(spec["z"][0]) == 13  # the label is not in the spec


def test_string_classes_pipeline_passes_check(wine):
    res = wine.run("check", "wine.zip", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["status"] == "usable" and report["model"]["output_shape"] == [3]


def test_predict_writes_class_names_with_the_in_process_accuracy(wine):
    assert wine.run("reuse", "--ids", wine.id, "-o", "ens.lwe").returncode == 0
    res = wine.run("predict", "ens.lwe", "test.csv", "--proba", "-o", "pred.csv")
    assert res.returncode == 0, res.stderr
    with open(wine.root / "pred.csv") as fh:
        header = next(csv.reader(fh))
    assert header == ["prediction"] + [f"proba_{c}" for c in sorted(WINES)]
    expected = float(np.mean(wine.model.predict(wine.X_test) == wine.y_test))
    assert expected > 0.9
    assert _accuracy(wine.root / "pred.csv", wine.y_test) == expected


def test_reordered_columns_are_realigned_by_name(wine):
    assert wine.run("reuse", "--ids", wine.id, "-o", "ens2.lwe").returncode == 0
    a = wine.run("predict", "ens2.lwe", "test.csv", "-o", "a.csv")
    b = wine.run("predict", "ens2.lwe", "test_reordered.csv", "-o", "b.csv")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert (wine.root / "a.csv").read_text() == (wine.root / "b.csv").read_text()
    in_order = wine.run("search", "--data", "test.csv", "--json")
    shuffled = wine.run("search", "--data", "test_reordered.csv", "--json")
    assert in_order.returncode == 0 and shuffled.returncode == 0, shuffled.stderr
    top = [json.loads(r.stdout)["singles"][0] for r in (in_order, shuffled)]
    assert top[0]["id"] == top[1]["id"] == wine.id
    assert top[0]["score"] > 0 and top[1]["score"] == pytest.approx(top[0]["score"])


def test_missing_columns_are_one_error_naming_them(wine):
    assert wine.run("reuse", "--ids", wine.id, "-o", "ens3.lwe").returncode == 0
    keep = [c for c in wine.cols if c not in ("hue", "proline")]
    _write_csv(wine.root / "short.csv", keep, wine.X_test[:, [wine.cols.index(c) for c in keep]])
    res = wine.run("predict", "ens3.lwe", "short.csv", "-o", "x.csv")
    assert res.returncode == ExitCode.BAD_INPUT
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "missing hue, proline" in errors[0]
    assert not (wine.root / "x.csv").exists()


def test_pandas_default_header_is_a_header(wine):
    assert wine.run("reuse", "--ids", wine.id, "-o", "ens4.lwe").returncode == 0
    n = len(wine.X_test)
    # as DataFrame(X).to_csv() writes it (an index column), and with index=False
    _write_csv(wine.root / "pd_index.csv", [str(i) for i in range(13)], wine.X_test, index=True)
    _write_csv(wine.root / "pd_plain.csv", [str(i) for i in range(13)], wine.X_test)
    for name in ("pd_index.csv", "pd_plain.csv"):
        res = wine.run("predict", "ens4.lwe", name, "-o", f"out_{name}", "--json")
        assert res.returncode == 0, res.stderr
        assert _accuracy(wine.root / f"out_{name}", wine.y_test) == pytest.approx(
            float(np.mean(wine.model.predict(wine.X_test) == wine.y_test)))
        with open(wine.root / f"out_{name}") as fh:
            assert sum(1 for _ in fh) == n + 1
        assert "no column names" in res.stderr  # the order decides, and that is said


def test_reuse_with_string_labels(wine):
    res = wine.run("reuse", "--ids", wine.id, "--labeled", "labeled.csv", "--label-column", "label",
                   "-o", "ens5.lwe", "--json")
    assert res.returncode == 0, res.stderr
    res = wine.run("predict", "ens5.lwe", "test_reordered.csv", "-o", "p5.csv")
    assert res.returncode == 0, res.stderr
    assert _accuracy(wine.root / "p5.csv", wine.y_test) > 0.9


def test_labels_outside_the_declared_classes_are_refused(wine):
    res = wine.run("pack", "--model", "model.pkl", "--data", "train.csv", "--label-column", "label",
                   "--classes", "barolo,barbera", "--task", "Classification", "-o", "bad.zip")
    assert res.returncode != 0 and "grignolino" in res.stderr
    res = wine.run("pack", "--model", "model.pkl", "--data", "train.csv", "--task", "Classification", "-o", "b.zip")
    assert res.returncode == ExitCode.BAD_INPUT
    assert "column label: non-numeric value" in res.stderr and "--label-column label" in res.stderr
