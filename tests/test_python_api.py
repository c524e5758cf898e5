"""The Python API of issue 15: docs/python-api.md's example runs, the public names match the
docs, ``Dock.list()`` and ``list --json`` agree, ensembles behave like scikit-learn models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _factory import learnware_zip

import lwdock
import lwdock.reuse

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"


def test_the_documented_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    (tmp_path / "sample_learnwares").symlink_to(ROOT / "sample_learnwares")
    env = {**os.environ, "LWDOCK_NO_PROGRESS": "1"}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert "['digits-0123', 'digits-4567']" in p.stdout and "accuracy" in p.stdout
    assert (tmp_path / "ensemble.lwe").is_file()


def test_public_names_match_the_docs():
    doc = DOC.read_text()
    for name in lwdock.__all__:
        assert name == "__version__" or f"`{name}`" in doc, name
        assert getattr(lwdock, name) is not None
    for name in lwdock.reuse.__all__:
        assert f"`{name}`" in doc, name
        assert getattr(lwdock.reuse, name) is not None
    from lwdock.reuse import AveragingReuser, JobSelectorReuser  # docs/reuse.md's promise

    assert AveragingReuser.method == "average" and JobSelectorReuser.method == "job-selector"


def test_dock_list_and_list_json_are_the_same_records(tmp_path):
    from lwdock import Dock
    from typer.testing import CliRunner

    from lwdock.cli import app

    dock = Dock.init(tmp_path / "d")
    for seed in (0, 1):
        dock.submit(learnware_zip(tmp_path / f"lw{seed}.zip", seed=seed, name=f"m{seed}"), run_model=False)
    r = CliRunner().invoke(app, ["--dock", str(dock.path), "list", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [e.summary() for e in dock.list()]
    info = dock.info()
    assert info["learnwares"] == 2 and info["by_status"] == {"semantic-only": 2} and info["gamma"] is None


def test_search_takes_arrays_and_a_search_result_feeds_reuse(tmp_path):
    from lwdock import Dock, SearchResult

    dock = Dock.init(tmp_path / "d")
    for seed, center in ((0, 0.0), (1, 5.0)):
        dock.submit(learnware_zip(tmp_path / f"lw{seed}.zip", seed=seed, center=center, name=f"m{seed}"),
                    run_model=False)
    X = np.random.default_rng(0).normal(5.0, 1.0, size=(80, 2))
    by_rows = dock.search(X, include_unchecked=True)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    by_file = dock.search(tmp_path / "x.csv", include_unchecked=True)
    assert isinstance(by_rows, SearchResult)
    assert by_rows.ids == by_file.ids and by_rows.singles[0].name == "m1"
    assert by_rows.singles[0].score == pytest.approx(by_file.singles[0].score, rel=1e-6)
    from lwdock.reuse.api import read_selection

    assert read_selection(by_rows)[0] == read_selection(by_rows.to_dict())[0]


def test_dock_init_refuses_an_infinite_gamma(tmp_path):
    from lwdock import Dock
    from lwdock.errors import UsageError

    with pytest.raises(UsageError, match="finite"):
        Dock.init(tmp_path / "d", gamma=float("inf"))
    assert not (tmp_path / "d" / "dock.json").exists()


def test_ensemble_score_and_classes_like_sklearn():
    from lwdock.reuse.api import build_ensemble
    from lwdock.reuse.base import InProcessPredictor

    class Const:
        def __init__(self, k):
            self.k = k

        def predict(self, X):
            out = np.zeros((len(X), 3))
            out[:, self.k] = 1.0
            return out

    X = np.zeros((10, 2))
    ens = build_ensemble([InProcessPredictor(Const(1))], "average", "classification", 3, data=X)
    y = np.array([1] * 7 + [2] * 3)
    assert list(ens.classes_) == [0, 1, 2]
    assert ens.score(X, y) == pytest.approx(0.7)
    assert ens.reuser.score(X, y) == pytest.approx(0.7)
    assert ens.predict_proba(X).shape == (10, 3)
