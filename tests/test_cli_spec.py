"""`lwdock spec table` and `lwdock spec show` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine
from typer.testing import CliRunner

from lwdock.cli import app
from lwdock.errors import ExitCode

runner = CliRunner()


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    X = load_wine().data
    path = tmp_path / "wine.csv"
    path.write_text(",".join(f"c{i}" for i in range(X.shape[1])) + "\n"
                    + "\n".join(",".join(repr(float(v)) for v in row) for row in X) + "\n")
    return path


def test_table_then_show_with_leak(tmp_path: Path, wine_csv: Path) -> None:
    out = tmp_path / "spec.json"
    r = runner.invoke(app, ["spec", "table", str(wine_csv), "-o", str(out), "--K", "20", "--seed", "1", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["K"] == 20 and result["dim"] == 13 and result["num_points"] == 178
    assert json.loads(out.read_text())["type"] == "RKMETableSpecification"

    r = runner.invoke(app, ["spec", "show", str(out), "--data", str(wine_csv), "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["K"] == 20 and shown["leak"]["count"] == 0 and shown["leak"]["fraction"] == 0.0

    r = runner.invoke(app, ["spec", "show", str(out), "--data", str(wine_csv)])
    assert r.exit_code == 0 and "leak" in r.stdout and "0.0%" in r.stdout


def test_same_seed_same_file(tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).standard_normal((300, 4)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        r = runner.invoke(app, ["spec", "table", str(data), "-o", str(path), "--K", "10", "--steps", "2",
                                "--max-samples", "200", "--seed", "7"])
        assert r.exit_code == 0, r.output
    assert a.read_text() == b.read_text()
    assert "wrote" in r.stderr and r.stdout == ""


def test_errors_map_to_exit_codes(tmp_path: Path) -> None:
    r = runner.invoke(app, ["spec", "table", str(tmp_path / "none.npy"), "-o", str(tmp_path / "s.json")])
    assert r.exit_code == ExitCode.NOT_FOUND
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    r = runner.invoke(app, ["spec", "table", str(bad), "-o", str(tmp_path / "s.json")])
    assert r.exit_code == ExitCode.BAD_INPUT and "non-numeric" in r.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"z": [[1.0, 2.0]], "beta": [1.0')
    r = runner.invoke(app, ["spec", "show", str(broken)])
    assert r.exit_code == ExitCode.BAD_INPUT and "JSON" in r.output
    nan_col = tmp_path / "nan.npy"
    np.save(nan_col, np.array([[1.0, np.nan], [2.0, np.nan]]))
    r = runner.invoke(app, ["spec", "table", str(nan_col), "-o", str(tmp_path / "s.json")])
    assert r.exit_code == ExitCode.BAD_INPUT and "column" in r.output


def test_show_rejects_data_of_another_width(tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).standard_normal((30, 3)))
    spec = tmp_path / "s.json"
    assert runner.invoke(app, ["spec", "table", str(data), "-o", str(spec), "--K", "5"]).exit_code == 0
    other = tmp_path / "y.npy"
    np.save(other, np.ones((5, 2)))
    r = runner.invoke(app, ["spec", "show", str(spec), "--data", str(other)])
    assert r.exit_code == ExitCode.BAD_INPUT and "columns" in r.output


def test_help_does_not_import_numpy() -> None:
    code = "import sys; from lwdock.cli import app; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_device_defaults_to_the_environment(tmp_path, monkeypatch):
    import numpy as np
    from typer.testing import CliRunner

    from lwdock.cli import app

    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 3)))
    monkeypatch.setenv("LWDOCK_DEVICE", "cuda:7")  # no such device here: the env var must be what is used
    r = CliRunner().invoke(app, ["spec", "table", str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.json")])
    assert r.exit_code != 0 and "cuda" in r.stderr.lower()
    r = CliRunner().invoke(app, ["spec", "table", str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.json"),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
