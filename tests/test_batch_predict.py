"""Batch predict (issue 16): several files, stdin and stdout, workers started once."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_reuse_dock import learnware_zip
from test_reuse_market import DIM, Market
from typer.testing import CliRunner

from lwdock.check import runner as runner_mod
from lwdock.check import sandbox
from lwdock.cli import app
from lwdock.reuse.api import reuse


@pytest.fixture(scope="module")
def market_files(tmp_path_factory):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("batch-predict")
    market = Market(seed=1, n_learnwares=3)
    dock = Dock.init(base / "dock")
    ids = [dock.submit(learnware_zip(base / f"lw{i}.zip", clf, X, f"lw{i}"), run_model=False).id
           for i, (clf, X) in enumerate(zip(market.models, market.train))]
    X, _ = market.user(90)
    with reuse(dock, ids, "average", data=X, trusted=True) as ens:
        lwe = ens.save(base / "avg.lwe")
    header = ",".join(f"f{j}" for j in range(DIM))
    files = []
    for k in range(3):
        f = base / f"part{k}.csv"
        np.savetxt(f, X[30 * k : 30 * (k + 1)], delimiter=",", header=header, comments="")
        files.append(f)
    return dock, lwe, files


def cli(dock, *args, input=None):
    return CliRunner().invoke(app, ["--dock", str(dock.path), *[str(a) for a in args]], input=input)


def test_three_files_in_one_call_equal_three_calls_and_start_workers_once(market_files, tmp_path, monkeypatch):
    dock, lwe, files = market_files
    singles = []
    for k, f in enumerate(files):
        r = cli(dock, "predict", lwe, f, "-o", tmp_path / f"single{k}.csv", "--trusted")
        assert r.exit_code == 0, r.output
        singles.append((tmp_path / f"single{k}.csv").read_text())

    starts = []
    real = sandbox.start_worker
    monkeypatch.setattr(sandbox, "start_worker", lambda **kw: starts.append(1) or real(**kw))
    monkeypatch.setattr(runner_mod, "start_worker", sandbox.start_worker)
    r = cli(dock, "predict", lwe, *files, "-o", tmp_path / "out")  # sandboxed workers
    assert r.exit_code == 0, r.output
    assert len(starts) == 3  # one worker per learnware for all three files
    for k, f in enumerate(files):
        assert (tmp_path / "out" / f"part{k}.csv").read_text() == singles[k]
    wrote = [line for line in r.stderr.splitlines() if line.startswith("wrote")]
    assert r.stdout == "" and len(wrote) == 3 and "30 predictions" in wrote[0]  # stdout carries data only


def test_stdout_is_only_csv_and_stdin_is_read(market_files):
    dock, lwe, files = market_files
    r = cli(dock, "predict", lwe, *files, "-o", "-", "--trusted")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("prediction") and len(lines) == 1 + 90  # one header, then every row in order
    table = np.loadtxt(io.StringIO(r.stdout), delimiter=",", skiprows=1)
    assert table.shape[0] == 90 and "wrote 90 predictions to stdout" in r.stderr

    r2 = cli(dock, "predict", lwe, "-", "-o", "-", "--trusted", input=files[1].read_text())
    assert r2.exit_code == 0, r2.output
    assert r2.stdout.splitlines()[1:] == lines[31:61]


def test_bad_outputs_are_refused(market_files, tmp_path):
    dock, lwe, files = market_files
    r = cli(dock, "predict", lwe, files[0], files[0], "-o", tmp_path / "o", "--trusted")
    assert r.exit_code == 2 and "both be written to part0.csv" in r.stderr
    (tmp_path / "f.csv").write_text("x")
    r = cli(dock, "predict", lwe, *files[:2], "-o", tmp_path / "f.csv", "--trusted")
    assert r.exit_code == 2 and "need a directory" in r.stderr
    r = cli(dock, "--json", "predict", lwe, files[0], "-o", "-", "--trusted")
    assert r.exit_code == 2 and "choose one" in r.stderr
