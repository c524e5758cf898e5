"""Bulk submit (issue 16): many zips in one call, checked in parallel, each all or nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from _factory import learnware_files, write_zip
from lwdock.api import Dock
from lwdock.batch.executors import LocalExecutor
from lwdock.batch.submit import SubmitOptions, submit_many
from lwdock.cli import app
from lwdock.errors import ExitCode

HOSTILE = '''
import os
import numpy as np


class Model:
    def __init__(self, dim=2, n_classes=2):
        self.input_shape = (dim,)
        self.output_shape = (n_classes,)

    def predict(self, X):
        try:
            open("/learnware/pwned", "w").write("x")  # read-only inside the sandbox
        except OSError:
            pass
        os._exit(3)  # and the worker dies in the middle of a call
'''


def run(*args, dock, input=None):
    return CliRunner().invoke(app, ["--dock", str(dock), *[str(a) for a in args]], input=input)


def _zips(tmp_path, n=20):
    folder = tmp_path / "zips"
    folder.mkdir()
    zips = [write_zip(folder / f"lw{i:02d}.zip", learnware_files(seed=i, name=f"model {i}")) for i in range(n)]
    bad = learnware_files(seed=99, name="hostile")
    bad["__init__.py"] = HOSTILE
    return zips, write_zip(folder / "lw_hostile.zip", bad)


def _checks(entry):
    return entry.status, [(c["name"], c["ok"]) for c in entry.check.checks]


@pytest.mark.usefixtures("kernel_sandbox")
def test_twenty_learnwares_in_one_call_equal_one_by_one(tmp_path):
    zips, hostile = _zips(tmp_path)
    bulk = tmp_path / "bulk"
    assert run("init", dock=bulk).exit_code == 0
    r = run("submit", "--jobs", "2", *zips[:10], hostile, *zips[10:], dock=bulk)
    assert r.exit_code == ExitCode.CHECK_FAILED, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 21  # one result line per zip, in argument order
    assert lines[10].startswith("FAILED") and "lw_hostile.zip" in lines[10]
    assert "20 stored, 0 already in the dock, 1 failed" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: 1 of 21 learnwares were not stored")

    one = Dock.init(tmp_path / "one")
    expected = {}
    for z in zips:
        e = one.submit(z, env_manager="venv")
        expected[e.id] = _checks(e)
    stored = {e.id: _checks(e) for e in Dock(bulk).entries()}
    assert stored == expected  # the same learnwares, statuses and check results
    assert [ln.split()[0] for ln in lines if not ln.startswith("FAILED")] == list(expected)
    assert not list((bulk / "tmp").glob("submit-*")), "scratch left behind"


def test_folder_stdin_json_and_exist_ok(tmp_path):
    zips, _ = _zips(tmp_path, n=3)
    d = tmp_path / "d"
    run("init", dock=d)
    r = run("--json", "submit", "--no-run", "-j", "2", "-", dock=d, input="\n".join(map(str, zips[:2])) + "\n")
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert [rec["zip"] for rec in records] == [str(z) for z in zips[:2]]
    assert all(rec["ok"] and rec["status"] == "semantic-only" and not rec["existed"] for rec in records)

    (zips[0].parent / "copy.zip").write_bytes(zips[2].read_bytes())  # the same learnware twice
    r = run("--json", "submit", "--no-run", zips[0].parent, dock=d)  # a folder; two are there already
    assert r.exit_code == ExitCode.CONFLICT
    by_zip = {rec["zip"].rsplit("/", 1)[1]: rec for rec in json.loads(r.stdout)}
    assert by_zip["lw00.zip"]["exit_code"] == ExitCode.CONFLICT and not by_zip["lw00.zip"]["ok"]
    assert by_zip["lw02.zip"]["ok"] and by_zip["copy.zip"]["ok"] and by_zip["copy.zip"]["id"] == by_zip["lw02.zip"]["id"]

    r = run("submit", "--no-run", "--exist-ok", "-q", zips[0].parent, dock=d)
    assert r.exit_code == 0, r.output
    assert len(Dock(d).entries()) == 4 and len(r.stdout.split()) == 5  # 3 models, the hostile one, a copy


def test_library_submit_many_keeps_order_and_reports_failures(tmp_path):
    zips, _ = _zips(tmp_path, n=4)
    missing = tmp_path / "nope.zip"
    dock = Dock.init(tmp_path / "d")
    results = submit_many(dock, [zips[0], missing, *zips[1:]], SubmitOptions(run_model=False),
                          executor=LocalExecutor(2), commit_every=2)
    assert [r.ok for r in results] == [True, False, True, True, True]
    assert results[1].exit_code == ExitCode.NOT_FOUND and "nope.zip" in results[1].error
    assert {e.id for e in dock.entries()} == {r.entry.id for r in results if r.ok}


@pytest.mark.usefixtures("kernel_sandbox")
def test_dask_local_cluster_gives_the_local_results(tmp_path, lwdock_bin):
    pytest.importorskip("distributed")
    zips, hostile = _zips(tmp_path, n=4)
    local, remote = tmp_path / "local", tmp_path / "dask"
    run("init", dock=local)
    run("init", dock=remote)
    r1 = run("--json", "submit", "-j", "2", *zips, hostile, dock=local)
    # the console script, so the cluster's processes belong to that process, not to the tests'
    r2 = subprocess.run([lwdock_bin, "--dock", str(remote), "--json", "submit", "--executor", "dask", "-j", "2",
                         *map(str, [*zips, hostile])], capture_output=True, text=True,
                        env={k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"})
    assert r1.exit_code == r2.returncode == ExitCode.CHECK_FAILED, r2.stderr
    strip = [{k: v for k, v in rec.items() if k != "check"} for rec in json.loads(r1.stdout)]
    assert strip == [{k: v for k, v in rec.items() if k != "check"} for rec in json.loads(r2.stdout)]
    assert {e.id: _checks(e) for e in Dock(local).entries()} == {e.id: _checks(e) for e in Dock(remote).entries()}
    assert len(Dock(remote).entries()) == 4


BULK = ("import sys; from lwdock import Dock; from lwdock.batch.submit import SubmitOptions, submit_many\n"
        "submit_many(Dock.open(sys.argv[1]), sys.argv[2:], SubmitOptions(run_model=False))")


@pytest.mark.parametrize("point, stored", [("submit:after-blob", 0), ("submit:before-index", 0),
                                           ("submit:after-index", 5)])
def test_a_killed_bulk_submit_leaves_whole_learnwares_or_none(tmp_path, point, stored):
    zips, _ = _zips(tmp_path, n=5)
    dock = Dock.init(tmp_path / "d")
    p = subprocess.run([sys.executable, "-c", BULK, str(dock.path), *map(str, zips)],
                       env={**os.environ, "LWDOCK_FAULT": point}, capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()
    assert len(dock.entries()) == stored  # the index is written once per chunk: all of it or none
    assert dock.doctor().ok  # what is left is garbage doctor removes
    assert dock.doctor(repair=False).leftovers == []
    assert len(list(dock.layout.objects.glob("*/*.zip"))) == stored
    assert submit_many(dock, zips, SubmitOptions(run_model=False, exist_ok=True))[0].ok
    assert len(dock.entries()) == 5
