"""Usability checks end to end: a real sklearn learnware in a real child venv, and hostile ones."""

from __future__ import annotations

import json
import pickle
import tempfile
import textwrap
from pathlib import Path

import pytest
from _factory import learnware_files, semantic_dict, spec_dict, write_zip
from _procs import leftover_workers

from lwdock.check.checks import check_zip, run_checks
from lwdock.format.package import parse_package

REQS = "numpy\nscikit-learn\n"  # already in lwdock's env: the child env installs nothing
YAML = """model:
  class_name: Model
  module_path: __init__.py
stat_specifications:
  - module_path: learnware.specification
    class_name: RKMETableSpecification
    file_name: stat.json
"""
SKLEARN_MODEL = '''
import os
import pickle

from learnware.model import BaseModel


class Model(BaseModel):
    def __init__(self):
        super().__init__(input_shape=(4,), output_shape=(1,))
        with open(os.path.join(os.path.dirname(__file__), "model.pkl"), "rb") as f:
            self.clf = pickle.load(f)

    def predict(self, X):
        return self.clf.predict(X)
'''
HOSTILE = '''
import os, sys, time
import numpy as np


class Model:
    def __init__(self):
        self.input_shape = (4,)
        self.output_shape = (1,)

    def predict(self, X):
{body}
'''


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("envs")


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path, monkeypatch):
    # nothing goes to the system temp dir, and the scratch dirs lwdock makes are all removed
    sys_tmp = tmp_path / "systmp"
    sys_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(sys_tmp))
    yield
    assert list(sys_tmp.iterdir()) == [], "temporary directories left behind"
    scratch = tmp_path / "cache" / "lwdock" / "tmp"  # XDG_CACHE_HOME is tmp_path/cache (conftest)
    assert not scratch.exists() or list(scratch.iterdir()) == [], "scratch directories left behind"
    assert leftover_workers() == [], "worker processes left behind"


def write_pkg(root: Path, model_code: str, *, semantic: dict | None = None, extra: dict | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "learnware.yaml").write_text(YAML)
    (root / "__init__.py").write_text(model_code)
    (root / "stat.json").write_text(json.dumps(spec_dict(d=4)))
    (root / "requirements.txt").write_text(REQS)
    (root / "semantic_specification.json").write_text(json.dumps(semantic or semantic_dict(d=4, out=3)))
    for name, data in (extra or {}).items():
        (root / name).write_bytes(data)
    return root


def hostile(tmp_path: Path, body: str, **kw):
    code = HOSTILE.format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    return parse_package(write_pkg(tmp_path / "pkg", code, **kw))


def failed(report) -> dict:
    fails = report.failures()
    assert report.status == "invalid" and fails, report.to_dict()
    return {c["name"]: c["reason"] for c in fails}


@pytest.fixture
def sklearn_pkg(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    return parse_package(write_pkg(tmp_path / "iris", SKLEARN_MODEL, extra={"model.pkl": pickle.dumps(clf)}))


def test_sklearn_learnware_is_usable_in_a_child_venv(sklearn_pkg, envs_dir):
    report = run_checks(sklearn_pkg, None, envs_dir=envs_dir, timeout=60)
    d = report.to_dict()
    assert report.status == "usable", d
    assert all(c["ok"] for c in d["checks"])
    names = [c["name"] for c in d["checks"]]
    for n in ("semantic_spec", "files", "spec_self_distance", "environment", "model_instantiates", "input_shape",
              "predict", "output_shape", "task_output"):
        assert n in names
    assert d["env"]["manager"] == "venv" and str(envs_dir) in d["env"]["python"]
    assert d["model"]["input_shape"] == [4]
    json.dumps(d)  # JSON-able


def test_no_run_gives_semantic_only(sklearn_pkg, envs_dir):
    report = run_checks(sklearn_pkg, None, envs_dir=envs_dir, run_model=False)
    assert report.status == "semantic-only"
    assert "model_instantiates" not in [c["name"] for c in report.checks]


def test_invalid_semantic_spec(sklearn_pkg, envs_dir):
    bad = semantic_dict(d=4, out=3)
    bad["Data"]["Values"] = ["Spreadsheet"]
    report = run_checks(sklearn_pkg, bad, envs_dir=envs_dir, run_model=False)
    assert "Spreadsheet" in failed(report)["semantic_spec"]


def test_input_dimension_disagreeing_with_semantic(sklearn_pkg, envs_dir):
    report = run_checks(sklearn_pkg, semantic_dict(d=5, out=3), envs_dir=envs_dir)
    assert "Input.Dimension 5" in failed(report)["input_shape"]


def test_labels_out_of_declared_range(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "return np.full(len(X), 5)"), None, envs_dir=envs_dir)
    assert "[0, 3)" in failed(report)["task_output"]


def test_probability_width_must_match_classes(tmp_path, envs_dir):
    code = HOSTILE.format(body="        return np.full((len(X), 2), 0.5)").replace("(1,)", "(2,)")
    report = run_checks(parse_package(write_pkg(tmp_path / "pkg", code)), None, envs_dir=envs_dir)
    assert "width 2 != Output.Dimension 3" in failed(report)["task_output"]


@pytest.mark.slow
def test_sleeping_model_times_out(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "time.sleep(3600)"), None, envs_dir=envs_dir, timeout=3)
    assert "timed out" in failed(report)["predict"]


def test_memory_hog_hits_limit(tmp_path, envs_dir):
    pkg = hostile(tmp_path, "x = np.ones((64, 2**30), dtype=np.uint8)\nreturn x[:, 0]")
    report = run_checks(pkg, None, envs_dir=envs_dir, memory_mb=1024)
    assert "MemoryError" in failed(report)["predict"]


def test_os_exit_model(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "os._exit(3)"), None, envs_dir=envs_dir)
    assert "exit code 3" in failed(report)["predict"]


@pytest.mark.slow
def test_endless_stdout_flood(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "while True:\n    print('spam' * 1000)"), None, envs_dir=envs_dir, timeout=3)
    reason = failed(report)["predict"]
    assert "timed out" in reason or "File too large" in reason


def test_chatty_model_still_usable(tmp_path, envs_dir):
    body = """
    for _ in range(5000):
        print('{"ok": true, "nbytes": 0}')
    return (np.asarray(X).sum(axis=1) > 0).astype(int)
    """
    report = run_checks(hostile(tmp_path, body), None, envs_dir=envs_dir)
    assert report.status == "usable", report.to_dict()


def test_write_outside_directory(tmp_path, envs_dir, kernel_sandbox):
    target = tmp_path / "escaped.txt"
    pkg = hostile(tmp_path, f"open({str(target)!r}, 'w').write('x')\nreturn np.zeros(len(X), dtype=int)")
    report = run_checks(pkg, None, envs_dir=envs_dir)
    assert "FileNotFoundError" in failed(report)["predict"]  # the host's folders do not exist in the sandbox
    assert not target.exists()
    assert report.sandbox["mode"] == "kernel" and "read-only" in report.sandbox["filesystem"]


def test_missing_package_import(tmp_path, envs_dir):
    code = "import definitely_not_installed_lwdock_pkg\n" + HOSTILE.format(body="        return X")
    pkg = parse_package(write_pkg(tmp_path / "pkg", code))
    report = run_checks(pkg, None, envs_dir=envs_dir)
    assert "definitely_not_installed_lwdock_pkg" in failed(report)["model_instantiates"]


def test_wrong_output_shape(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "return np.zeros((len(X), 2))"), None, envs_dir=envs_dir)
    assert "output_shape says (1,)" in failed(report)["output_shape"]


def test_wrong_row_count(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "return np.zeros(3, dtype=int)"), None, envs_dir=envs_dir)
    assert "returned 3 rows" in failed(report)["predict"]


def test_pickled_object_array(tmp_path, envs_dir):
    report = run_checks(hostile(tmp_path, "return np.array([object()] * len(X), dtype=object)"), None, envs_dir=envs_dir)
    assert "object array" in failed(report)["predict"]


def test_missing_spec_file(tmp_path, envs_dir):
    pkg = hostile(tmp_path, "return X")
    (pkg.root / "stat.json").unlink()
    report = run_checks(pkg, None, envs_dir=envs_dir)
    assert "stat.json" in failed(report)["files"]
    assert all(c["ok"] is None for c in report.checks if c["name"] in ("environment", "predict"))


def test_check_zip_rejects_a_broken_zip(tmp_path, envs_dir):
    z = tmp_path / "broken.zip"
    z.write_bytes(b"not a zip at all")
    report = check_zip(z, envs_dir=envs_dir)
    assert "package" in failed(report)


def test_cli_check_and_envs(tmp_path):
    from typer.testing import CliRunner

    from lwdock.cli import app

    dock = tmp_path / "dock"
    good = write_zip(tmp_path / "good.zip", learnware_files(d=2))
    runner = CliRunner()
    res = runner.invoke(app, ["--dock", str(dock), "check", str(good), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["status"] == "usable"

    files = learnware_files(d=2)
    files["__init__.py"] = files["__init__.py"].replace("return out", "return out[:, :1]")
    bad = write_zip(tmp_path / "bad.zip", files)
    res = runner.invoke(app, ["--dock", str(dock), "check", str(bad)])
    assert res.exit_code == 8, res.output
    assert "FAIL" in res.stdout and "status: invalid" in res.stdout

    res = runner.invoke(app, ["--dock", str(dock), "check", str(good), "--no-run", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "semantic-only"

    res = runner.invoke(app, ["--dock", str(dock), "envs", "list", "--json"])
    rows = json.loads(res.stdout)
    assert len(rows) == 1 and rows[0]["requirements"] == ["numpy"]
    res = runner.invoke(app, ["--dock", str(dock), "envs", "prune", "--dry-run", "--json"])
    assert len(json.loads(res.stdout)["removed"]) == 1 and (dock / "envs" / rows[0]["key"]).exists()
    res = runner.invoke(app, ["--dock", str(dock), "envs", "prune", "--yes"])
    assert res.exit_code == 0 and not (dock / "envs" / rows[0]["key"]).exists()
