"""Issue 15's leftovers, through the installed ``lwdock`` console script.

Bad numbers in a spec file are one ``error:`` line with exit 7 (not a silent ranking); hex-looking aliases;
``lwdock`` alone prints help; ``--points``; file line numbers in data errors; doctor repairs a missing blob.
Each test builds a small dock of factory learnwares through the Python API (no checks run),
then drives the real console script in a subprocess. Every dock is created through conftest's
``backend``: the tests run on a local dock and on a team dock (PostgreSQL index + S3 blobs).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from _factory import learnware_zip, spec_dict
from lwdock import Dock
from lwdock.format.ids import sha256_file


@pytest.fixture
def small(tmp_path, backend):
    """A dock with two 4-column factory learnwares, and a runner of the console script on it."""
    dock = backend.init(tmp_path / "dock")
    ids = [dock.submit(learnware_zip(tmp_path / f"{s}.zip", seed=s, d=4), run_model=False).id for s in (0, 1)]
    return tmp_path, ids


def run(lwdock_bin: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([lwdock_bin, "--dock", str(cwd / "dock"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def one_error(p: subprocess.CompletedProcess[str], code: int) -> str:
    """The one ``error:`` line of a failed command (an optional ``hint:`` line may follow)."""
    lines = p.stderr.splitlines()
    assert p.returncode == code, (p.returncode, p.stderr)
    assert p.stdout == "" and 1 <= len(lines) <= 2 and lines[0].startswith("error: "), p.stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), p.stderr
    assert "Traceback" not in p.stderr and "Warning" not in p.stderr
    return lines[0]


# -- 1, 2: spec files whose numbers cannot give a meaningful distance ------------------------
def _spec(path: Path, **changes) -> Path:  # type: ignore[no-untyped-def]
    data = spec_dict(d=4, seed=3)
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("changes", "words"), [
    ({"beta": [0.0] * 5}, "positive sum"),
    ({"beta": [-0.2] * 5}, "positive sum"),
    ({"beta": [0.5, 0.5, -0.5, -0.5, -0.1]}, "positive sum"),
    ({"beta": [0.2, 0.2, float("nan"), 0.2, 0.2]}, "NaN or Inf"),
    ({"z": [[float("inf")] * 4] + [[0.0] * 4] * 4}, "NaN or Inf"),
    ({"gamma": 1e308}, "too large"),
    ({"gamma": float("inf")}, "gamma"),
    ({"z": [[1e200] * 4] + [[0.0] * 4] * 4}, "too large"),
])
def test_a_spec_with_unusable_numbers_is_one_error(small, lwdock_bin, changes, words):
    root, _ = small
    _spec(root / "bad.json", **changes)
    for args in (("search", "--spec", "bad.json", "--include-unchecked"), ("spec", "show", "bad.json")):
        line = one_error(run(lwdock_bin, root, *args), 7)
        assert "bad.json" in line and words in line, line


def test_a_good_spec_still_ranks_and_gamma_large_but_safe_is_quiet(small, lwdock_bin):
    root, ids = small
    for gamma in (0.1, 1e250):  # 1e250: every kernel value underflows to 0, but nothing overflows
        _spec(root / "ok.json", gamma=gamma)
        p = run(lwdock_bin, root, "search", "--spec", "ok.json", "--include-unchecked", "-q")
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.split()) == sorted(ids)
        assert "overflow" not in p.stderr and "RuntimeWarning" not in p.stderr


# -- 3: aliases that look like hex ---------------------------------------------------------------
def test_a_hex_looking_alias_is_allowed_unless_it_could_be_an_id(small, lwdock_bin):
    root, (a, b) = small
    assert a[0] in "abcdef" and b[0] in "abcdef"  # the factory's ids for seeds 0 and 1 (fixed bytes)
    assert run(lwdock_bin, root, "alias", a, "d6789").returncode == 0
    shown = json.loads(run(lwdock_bin, root, "show", "d6789", "--json").stdout)
    assert shown["id"] == a and shown["alias"] == "d6789"
    # an alias that is the start of another learnware's id would hide it from its short id: refused
    line = one_error(run(lwdock_bin, root, "alias", a, b[:6]), 13)
    assert "start of learnware" in line and b[:12] in line
    assert json.loads(run(lwdock_bin, root, "show", b[:6], "--json").stdout)["id"] == b
    # the start of its own id is harmless: both readings give the same learnware
    assert run(lwdock_bin, root, "alias", a, a[:6]).returncode == 0
    assert json.loads(run(lwdock_bin, root, "show", a[:6], "--json").stdout)["id"] == a
    # as long as the short ids that tables show: refused whatever the dock holds
    line = one_error(run(lwdock_bin, root, "alias", b, "deadbeefcafe"), 2)
    assert "hex digits" in line
    assert run(lwdock_bin, root, "alias", b, "deadbeefcaf").returncode == 0


def test_an_alias_is_matched_before_an_id_prefix(tmp_path, lwdock_bin, backend):
    dock = backend.init(tmp_path / "dock")
    later = learnware_zip(tmp_path / "b.zip", seed=0, d=4)
    alias = sha256_file(later)[:4]
    assert alias[0] in "abcdef"  # the factory's zips have fixed bytes, so fixed ids
    a = dock.submit(learnware_zip(tmp_path / "a.zip", seed=1, d=4), run_model=False, alias=alias)
    # a learnware submitted later whose id starts with that alias: the alias wins, one digit more finds it
    b = dock.submit(later, run_model=False)
    assert b.id.startswith(alias) and not a.id.startswith(alias)
    assert json.loads(run(lwdock_bin, tmp_path, "show", alias, "--json").stdout)["id"] == a.id
    assert json.loads(run(lwdock_bin, tmp_path, "show", b.id[:5], "--json").stdout)["id"] == b.id
    # submitting with an alias that an id in the dock starts with is refused like `alias`
    c = learnware_zip(tmp_path / "c.zip", seed=2, d=4)
    line = one_error(run(lwdock_bin, tmp_path, "submit", str(c), "--alias", b.id[:8], "--trusted"), 13)
    assert "start of learnware" in line


# -- 4: no arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize("group", [[], ["spec"], ["envs"]])
def test_a_command_group_alone_prints_its_help(tmp_path, lwdock_bin, group):
    alone = subprocess.run([lwdock_bin, *group], capture_output=True, text=True, cwd=tmp_path)
    asked = subprocess.run([lwdock_bin, *group, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert (alone.returncode, alone.stderr) == (0, "")
    assert alone.stdout == asked.stdout and alone.stdout.startswith(f"Usage: lwdock {' '.join(group)}".rstrip())
    missing = subprocess.run([lwdock_bin, "show"], capture_output=True, text=True, cwd=tmp_path)
    one_error(missing, 2)  # a command missing its argument is still a usage error


# -- 5: the reduced-set size is --points; -K / --K stay as hidden old spellings ------------------
def test_points_names_the_reduced_set_size_and_k_is_hidden(tmp_path, lwdock_bin):
    import numpy as np

    np.savetxt(tmp_path / "x.csv", np.random.default_rng(0).normal(size=(40, 3)), delimiter=",")
    for command in (["spec", "table"], ["spec", "image"], ["spec", "text"], ["pack"]):
        shown = subprocess.run([lwdock_bin, *command, "--help"], capture_output=True, text=True).stdout
        assert "--points N" in shown and not re.search(r"(^|[\s,])--?K\b", shown), (command, shown)
    for i, flag in enumerate(("--points", "-K", "--K")):
        out = tmp_path / f"s{i}.json"
        p = subprocess.run([lwdock_bin, "spec", "table", "x.csv", "-o", str(out), flag, str(5 + i), "--steps", "1"],
                           capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert len(json.loads(out.read_text())["beta"]) == 5 + i


# -- 6: data-loading errors count lines of the file from 1, header and blank lines included ------
def test_data_errors_name_the_file_line(small, lwdock_bin):
    root, (a, _) = small
    (root / "text.csv").write_text("a,b,c,d\n1,2,3,4\n\n5,6,x,8\n")  # the x is on line 4 of the file
    (root / "short.csv").write_text("1,2,3,4\n\n\n1,2\n")
    (root / "nan.csv").write_text("a,b,c,d\n1,2,3,4\n5,,7,8\n")
    line = one_error(run(lwdock_bin, root, "search", "--data", "text.csv", "--include-unchecked"), 7)
    assert line == "error: text.csv: line 4, column c: non-numeric value 'x'"
    assert "--label-column c" in run(lwdock_bin, root, "spec", "table", "text.csv", "-o", "s.json").stderr
    line = one_error(run(lwdock_bin, root, "search", "--data", "short.csv", "--include-unchecked"), 7)
    assert line == "error: short.csv: line 4 has 2 fields, expected 4"
    # an empty field reaches reuse as NaN; an array has no lines, so its rows count from 1 too
    line = one_error(run(lwdock_bin, root, "reuse", a, "--data", "nan.csv", "--trusted", "-q"), 7)
    assert "first in data row 2, counting from 1" in line


# -- 7: a learnware whose blob is missing -----------------------------------------------------------
def test_doctor_removes_the_entry_of_a_learnware_whose_blob_is_missing(small, lwdock_bin, backend):
    root, (a, b) = small
    assert run(lwdock_bin, root, "alias", a, "gone").returncode == 0
    backend.lose_blob(root / "dock", a)
    line = one_error(run(lwdock_bin, root, "export", "gone", "-o", "x.zip"), 10)
    assert "blob" in line and "missing" in line
    assert "hint: run `lwdock doctor`" in run(lwdock_bin, root, "export", "gone", "-o", "x.zip").stderr
    dry = run(lwdock_bin, root, "doctor", "--dry-run")  # the report on stdout, then the error
    problem = f"learnware {a[:12]} is indexed but its blob is missing (repair: remove its entry)"
    assert dry.returncode == 10 and dry.stdout.splitlines()[0] == f"found:    {problem}"
    assert dry.stderr.splitlines() == [f"error: the dock is not consistent: {problem}",
                                       "hint: run `lwdock doctor` to repair (each problem says what the repair does)"]
    fixed = run(lwdock_bin, root, "doctor", "--json")
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["ok"] and report["learnwares"] == 1 and report["repaired"] == [report["problems"][0]]
    # the dock is consistent again: the learnware is gone everywhere, its alias is free, the rest works
    assert run(lwdock_bin, root, "doctor").returncode == 0
    assert run(lwdock_bin, root, "list", "-q").stdout.split() == [b]
    one_error(run(lwdock_bin, root, "show", "gone"), 3)
    assert run(lwdock_bin, root, "alias", b, "gone").returncode == 0
    _spec(root / "ok.json", gamma=0.1)
    found = run(lwdock_bin, root, "search", "--spec", "ok.json", "--include-unchecked", "-q")
    assert found.returncode == 0 and found.stdout.split() == [b]
    assert not list((root / "dock" / "objects").rglob(f"{a}*")) and backend.stored_ids(root / "dock") == {b}


def test_the_python_api_refuses_weights_without_a_positive_sum(small):
    from lwdock.errors import InputDataError

    root, _ = small
    dock = Dock(root / "dock")
    spec = spec_dict(d=4, seed=3)
    for beta in ([0.0] * 5, [-0.2] * 5):
        with pytest.raises(InputDataError, match="positive sum"):
            dock.search(spec={"z": spec["z"], "beta": beta}, include_unchecked=True)
    assert len(dock.search(spec={"z": spec["z"], "beta": spec["beta"]}, include_unchecked=True).singles) == 2
