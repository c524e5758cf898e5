"""Bulk spec fitting (`lwdock spec table A B C -o DIR/`): the same bytes as one file at a time, on
threads and on a Dask local cluster (issue 19: bulk jobs on a distributed engine)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from lwdock.batch.specs import plan_spec_outputs
from lwdock.errors import UsageError


def _files(tmp_path, n=3):  # type: ignore[no-untyped-def]
    files = []
    for i in range(n):
        X = np.random.default_rng(i).normal(i, 1 + i, size=(150, 4)) * (10.0 ** i)
        f = tmp_path / f"d{i}.csv"
        np.savetxt(f, X, delimiter=",", header="a,b,c,d", comments="")
        files.append(f)
    return files


def _lw(lwdock_bin, tmp_path, *args):  # type: ignore[no-untyped-def]
    return subprocess.run([lwdock_bin, *map(str, args)], capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_many_files_give_the_bytes_of_one_file_at_a_time(tmp_path, lwdock_bin, executor):
    if executor == "dask":
        pytest.importorskip("distributed")
    files = _files(tmp_path)
    for f in files:
        assert _lw(lwdock_bin, tmp_path, "spec", "table", f, "-o", f"{f.stem}.single.json").returncode == 0
    r = _lw(lwdock_bin, tmp_path, "--json", "spec", "table", *files, "-o", "out/", "--jobs", "2",
            "--executor", executor)
    assert r.returncode == 0, r.stderr
    summaries = json.loads(r.stdout)  # stdout: data only, one summary per file in argument order
    assert [s["path"] for s in summaries] == [f"out/{f.stem}.json" for f in files]
    for f in files:
        assert (tmp_path / "out" / f"{f.stem}.json").read_bytes() == (tmp_path / f"{f.stem}.single.json").read_bytes()


def test_one_bad_file_fails_the_call_but_the_others_are_written(tmp_path, lwdock_bin):
    files = _files(tmp_path, 2)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    r = _lw(lwdock_bin, tmp_path, "spec", "table", files[0], bad, files[1], "-o", "out/")
    assert r.returncode == 7 and r.stderr.startswith("error:") and "bad.csv" in r.stderr
    assert (tmp_path / "out" / "d0.json").is_file() and (tmp_path / "out" / "d1.json").is_file()


def test_output_plans(tmp_path):
    assert plan_spec_outputs(["a.csv"], tmp_path / "s.json") == [tmp_path / "s.json"]
    assert plan_spec_outputs(["x/a.csv", "b.npy"], tmp_path) == [tmp_path / "a.json", tmp_path / "b.json"]
    with pytest.raises(UsageError, match="both be written to a.json"):
        plan_spec_outputs(["x/a.csv", "y/a.csv"], tmp_path / "o/")
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        plan_spec_outputs(["a.csv", "b.csv"], tmp_path / "f")
