"""The README's promises, through the installed ``lwdock`` console script (issue 15).

stdout carries data only (with and without ``--json``), every error is one ``error:`` line
(plus an optional ``hint:``) with its documented exit code, usage errors included, and the
global options work before or after the subcommand. One dock with two real sample learnwares
is built once for the module and per kind of dock (about 15 s: their checks run in the sandbox):
conftest's ``module_backend`` makes it a local dock and a team dock (PostgreSQL index + S3 blobs).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import _kernel_sandbox

ROOT = Path(__file__).resolve().parents[1]
LWDOCK = Path(sys.executable).parent / "lwdock"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

pytestmark = pytest.mark.skipif(not LWDOCK.exists(), reason="lwdock console script not installed")


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "LWDOCK_NO_PROGRESS": "1", "COLUMNS": "80"}
    env.pop("LWDOCK_HOME", None)
    env.pop("LWDOCK_DEBUG", None)
    if _kernel_sandbox() is not None:
        env["LWDOCK_SANDBOX"] = "weak"  # as conftest does where bubblewrap is missing
    return env


class Shell:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dock = root / "dock"
        self.env = _env(root / "cache")

    def run(self, *args: str, dock: bool = True, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(LWDOCK), *(["--dock", str(self.dock)] if dock else []), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env={**self.env, **(env or {})},
                              cwd=cwd or self.root, timeout=300)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
        p = self.run(*args, **kw)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p


@pytest.fixture(scope="module")
def sh(tmp_path_factory, module_backend) -> Shell:
    sys.path.insert(0, str(ROOT / "sample_learnwares"))
    import market

    s = Shell(tmp_path_factory.mktemp("promises"))
    s.backend = module_backend
    s.env.update(module_backend.env())
    s.ok("init", "--gamma", "0.0005", *module_backend.init_args())
    s.ok("submit", str(ROOT / "sample_learnwares" / "digits-0123.zip"),
         str(ROOT / "sample_learnwares" / "digits-4567.zip"))
    X = market.digits_user()[0][:120]
    np.savetxt(s.root / "user.csv", X, delimiter=",")
    found = s.ok("search", "--data", "user.csv", "--json").stdout
    (s.root / "found.json").write_text(found)
    s.ok("reuse", "--from-search", "found.json", "--method", "average", "-o", "e.lwe")
    (s.root / "adir").mkdir()
    return s


def _ref(sh: Shell) -> str:
    return sh.ok("list", "-q", "--name", "digits-0123").stdout.strip()


def _tsv(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


# -- stdout is data -----------------------------------------------------------------------------
def test_listing_commands_print_pure_tsv_with_whole_ids(sh):
    rows = _tsv(sh.ok("list").stdout)
    assert rows[0] == ["id", "alias", "name", "data", "task", "dim", "status", "created"]
    assert len(rows) == 3 and all(len(r) == 8 and HEX64.match(r[0]) for r in rows[1:])
    found = sh.ok("search", "--data", "user.csv")
    rows = _tsv(found.stdout)
    assert rows[0][:2] == ["rank", "id"] and len(rows) == 3
    assert all(len(r) == len(rows[0]) and HEX64.match(r[1]) for r in rows[1:])
    assert "mixture" in found.stderr and "mixture" not in found.stdout
    assert sh.ok("search", "--data", "user.csv", "-q").stdout.split() == [r[1] for r in rows[1:]]


def test_format_no_header_sort_and_limit(sh):
    p = sh.ok("list", "--format", "csv", "--no-header", "--sort", "name", "--limit", "1")
    (row,) = list(csv.reader(io.StringIO(p.stdout)))
    assert row[2] == "digits-0123" and HEX64.match(row[0])
    names = [r["name"] for r in json.loads(sh.ok("list", "--format", "json", "--sort", "-name").stdout)]
    assert names == ["digits-4567", "digits-0123"]
    assert json.loads(sh.ok("list", "--json").stdout) == json.loads(sh.ok("list", "--format", "json").stdout)
    assert sh.ok("search", "--data", "user.csv", "--format", "tsv", "--no-header").stdout.count("\n") == 2


@pytest.mark.parametrize("json_flag", [False, True])
def test_every_command_keeps_messages_off_stdout(sh, json_flag):
    ref = _ref(sh)
    extra = ["--json"] if json_flag else []
    silent = [  # commands whose result is a file or a state: nothing on stdout without --json
        ("init",),
        ("alias", ref, "zero"),
        ("reuse", "--from-search", "found.json", "-o", "e2.lwe"),
        ("predict", "e.lwe", "user.csv", "-o", "preds.csv"),
        ("spec", "table", "user.csv", "-o", "spec.json", "-K", "5", "--steps", "1"),
    ]
    for args in silent:
        p = sh.ok(*args, *extra)
        if json_flag:
            assert isinstance(json.loads(p.stdout), dict), args
        else:
            assert p.stdout == "", (args, p.stdout)
    assert np.loadtxt(sh.root / "preds.csv", delimiter=",", skiprows=1).shape[0] == 120
    data = [("show", ref), ("export", ref, "-o", "x.zip"), ("doctor", "--dry-run"), ("envs", "list"),
            ("spec", "show", "spec.json"), ("reuse", ref, "--data", "user.csv")]
    for args in data:
        p = sh.ok(*args, *extra)
        if json_flag:
            json.loads(p.stdout)
        else:
            assert not re.search(r"^(wrote|submitted|removed|dock ready|warning)", p.stdout, re.M), (args, p.stdout)
    plain = sh.ok("reuse", ref, "--data", "user.csv").stdout.split()
    assert len(plain) == 120 and all(v.lstrip("-").isdigit() for v in plain)  # the predictions, nothing else


# -- errors -----------------------------------------------------------------------------------
ERRORS = [
    (("list", "--bogus"), 2),
    (("search", "--top", "many"), 2),
    (("serch",), 2),
    (("list", "--format", "xml"), 2),
    (("list", "--sort", "colour"), 2),
    (("show", "0000000000"), 3),
    (("check", "x.zip", "--env-manager", "nonee"), 2),
    (("submit", "x.zip", "--name", "n" * 1000), 2),
    (("spec", "table", "user.csv", "-o", "adir", "--gamma", "0.0005"), 2),
    (("export", "{ref}", "-o", "missing-dir/x.zip"), 3),
    (("reuse", "--from-search", "user.csv", "-o", "e3.lwe"), 7),
    (("reuse", "-o", "e3.lwe"), 2),
    (("search", "--data", "adir"), 2),
    (("search", "--data", "missing.csv"), 3),
    (("predict", "adir", "user.csv", "-o", "p.csv"), 2),
]


@pytest.mark.parametrize(("args", "code"), ERRORS, ids=[" ".join(a)[:40] for a, _ in ERRORS])
def test_errors_are_one_line_with_their_exit_code(sh, args, code):
    args = tuple(a.replace("{ref}", _ref(sh)) if "{ref}" in a else a for a in args)
    p = sh.run(*args)
    _assert_one_error(p, code)


@pytest.mark.parametrize(("args", "code"), [
    (("--dock", "{root}/no-dock", "list"), 10),
    (("--dock", "{root}/user.csv", "init"), 10),
    (("--dock", "{root}/new-dock", "init", "--gamma", "inf"), 2),
    (("--dock", "{root}/new-dock", "init", "--gamma", "-1"), 2),
])
def test_dock_errors(sh, args, code):
    p = sh.run(*(a.replace("{root}", str(sh.root)) for a in args), dock=False)
    _assert_one_error(p, code)
    assert not (sh.root / "new-dock" / "dock.json").exists()


def _assert_one_error(p: subprocess.CompletedProcess[str], code: int) -> None:
    lines = p.stderr.splitlines()
    assert p.returncode == code, (p.returncode, p.stderr)
    assert p.stdout == ""
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), p.stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), p.stderr
    assert "Traceback" not in p.stderr and "╭" not in p.stderr and "PosixPath" not in p.stderr


def test_init_is_idempotent_without_gamma(sh):
    assert sh.ok("init").returncode == 0
    assert json.loads(sh.ok("init", "--json").stdout)["gamma"] == 0.0005


# -- global options anywhere --------------------------------------------------------------------
def test_global_options_before_or_after_the_subcommand(sh):
    before = sh.ok("-q", "list").stdout
    after = subprocess.run([str(LWDOCK), "list", "--dock", str(sh.dock), "-q"], capture_output=True, text=True,
                           env=sh.env).stdout
    assert before == after and len(before.split()) == 2
    p = subprocess.run([str(LWDOCK), "search", "--data", "user.csv", "-q", "--dock", str(sh.dock)],
                       capture_output=True, text=True, env=sh.env, cwd=sh.root)
    assert p.returncode == 0 and set(p.stdout.split()) == set(before.split())
    shown = subprocess.run([str(LWDOCK), "show", before.split()[0], "--json", "--debug", f"--dock={sh.dock}"],
                           capture_output=True, text=True, env=sh.env)
    assert json.loads(shown.stdout)["id"] == before.split()[0]


# -- help and completion ------------------------------------------------------------------------
def _commands() -> list[list[str]]:
    from lwdock.cli import app
    from typer.main import get_command

    root = get_command(app)
    out = [[]]
    for name, cmd in root.commands.items():
        out.append([name])
        out.extend([name, sub] for sub in getattr(cmd, "commands", {}))
    return out


def test_help_shows_names_not_types():
    for path in _commands():
        p = subprocess.run([str(LWDOCK), *path, "--help"], capture_output=True, text=True)
        assert p.returncode == 0, path
        assert not re.search(r"<(bool|str|int|float|path|list\[)", p.stdout, re.I), (path, p.stdout)
        assert "{" not in p.stdout.split("\n", 1)[0], p.stdout  # the usage line: REF, ZIP..., not {ref}
        for old in ("--text-field", "--field ", "--ids", "--env-manager"):
            assert old not in p.stdout, (path, old)
    usage = subprocess.run([str(LWDOCK), "submit", "--help"], capture_output=True, text=True).stdout
    assert usage.startswith("Usage: lwdock submit [OPTIONS] ZIP...")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell):
    p = subprocess.run([str(LWDOCK)], capture_output=True, text=True,
                       env={**os.environ, "_LWDOCK_COMPLETE": f"source_{shell}"})
    assert p.returncode == 0 and "lwdock" in p.stdout and len(p.stdout) > 100


def test_bash_completion_completes_commands():
    env = {**os.environ, "_LWDOCK_COMPLETE": "complete_bash", "COMP_WORDS": "lwdock sea", "COMP_CWORD": "1"}
    p = subprocess.run([str(LWDOCK)], capture_output=True, text=True, env=env)
    assert p.stdout.split() == ["search"]


# -- a read-only dock serves every read command ------------------------------------------------
def test_read_only_dock_serves_reads(sh):
    bwrap = shutil.which("bwrap")
    probe = bwrap and subprocess.run([bwrap, "--bind", "/", "/", "--ro-bind", str(sh.root), str(sh.root), "--dev",
                                      "/dev", "true"], capture_output=True)
    if not probe or probe.returncode != 0:
        pytest.skip("needs bubblewrap to mount the dock read-only")
    ro = [bwrap, "--bind", "/", "/", "--ro-bind", str(sh.root), str(sh.root), "--dev", "/dev", "--proc", "/proc",
          str(LWDOCK), "--dock", str(sh.dock)]
    ref = _ref(sh)
    for args in (["list"], ["show", ref], ["search", "--data", "user.csv"], ["doctor", "--dry-run"],
                 ["envs", "list"]):
        p = subprocess.run([*ro, *args], capture_output=True, text=True, env=sh.env, cwd=sh.root)
        assert p.returncode == 0, (args, p.stderr)
    p = subprocess.run([*ro, "alias", ref, "ro"], capture_output=True, text=True, env=sh.env, cwd=sh.root)
    if not sh.backend.team:
        assert p.returncode == 14 and "error: read-only file system" in p.stderr and "Traceback" not in p.stderr
        return
    # a team dock's index is shared, not in this directory: the change commits, and this machine's
    # caches (read-only here) say how they catch up, one warning line each
    *warnings, done = p.stderr.splitlines()
    assert p.returncode == 0 and done.endswith("alias ro") and "Traceback" not in p.stderr, p.stderr
    assert warnings and all(w.startswith("warning: ") for w in warnings), p.stderr
    assert json.loads(sh.ok("show", "ro", "--json").stdout)["id"] == ref
    found = sh.ok("search", "--data", "user.csv", "-q").stdout.split()  # the stale search store caught up
    assert sorted(found) == sorted(sh.ok("list", "-q").stdout.split())
    assert json.loads(sh.ok("doctor", "--json").stdout)["ok"] is True


# -- behaviour fixes -----------------------------------------------------------------------------
def test_show_export_and_alias_accept_a_unique_name(sh):
    ref = _ref(sh)
    assert json.loads(sh.ok("show", "digits-0123", "--json").stdout)["id"] == ref
    assert sh.ok("export", "digits-4567", "-o", "by-name.zip").stdout.strip().endswith("by-name.zip")


def test_an_ambiguous_name_lists_the_candidates(tmp_path, backend):
    from _factory import learnware_zip

    from lwdock.errors import AmbiguousIdError

    dock = backend.init(tmp_path / "d")
    for seed in (0, 1):
        dock.submit(learnware_zip(tmp_path / f"{seed}.zip", seed=seed, name="twin"), run_model=False)
    with pytest.raises(AmbiguousIdError, match="2 learnwares are named 'twin'") as err:
        dock.get("twin")
    assert err.value.exit_code == 4


@pytest.mark.slow
def test_pack_takes_the_data_type_from_the_semantic_file(tmp_path):
    import pickle

    import zipfile
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from test_cli_spec_image_text import _digits
    from typer.testing import CliRunner

    from lwdock.cli import app

    X, y = load_digits(return_X_y=True)
    model = tmp_path / "img.pkl"
    model.write_bytes(pickle.dumps(LogisticRegression(max_iter=50).fit(X[:120], y[:120])))
    semantic = tmp_path / "semantic.json"
    semantic.write_text(json.dumps({"Data": {"Type": "Class", "Values": ["Image"]},
                                    "Task": {"Type": "Class", "Values": ["Classification"]},
                                    "Name": {"Type": "String", "Values": "d"}}))
    out = tmp_path / "img.zip"
    r = CliRunner().invoke(app, ["pack", "--model", str(model), "--data", str(_digits(tmp_path)), "--semantic",
                                 str(semantic), "--output-dim", "10", "-K", "5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("rkme.json"))["type"] == "RKMEImageSpecification"


def test_file_system_errors_have_their_codes(capsys):
    import errno

    from lwdock.cli._errors import report

    assert report(OSError(errno.ENOSPC, "No space left on device", "/d/objects/.x.zip.ab12cd.tmp"), False) == 14
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: no space left on device: /d/objects/x.zip",
                   "hint: free some space and retry; the dock is left as it was"]
    assert report(IsADirectoryError(errno.EISDIR, "Is a directory", "/out"), False) == 2


def test_doctor_names_a_missing_blob_and_the_repair(sh, tmp_path):
    if sh.backend.team:
        pytest.skip("local only: breaks a copy of the dock directory, which for a team dock is another machine "
                    "of the same shared dock (the team variant: test_cli_edges' doctor test)")
    dock = tmp_path / "copy"
    shutil.copytree(sh.dock, dock)
    blob = next((dock / "objects").rglob("*.zip"))
    blob.unlink()
    p = sh.run("--dock", str(dock), "doctor", "--dry-run", dock=False)
    assert p.returncode == 10
    assert "error: the dock is not consistent: learnware" in p.stderr and "blob is missing" in p.stderr
    assert "hint: run `lwdock doctor`" in p.stderr


def test_terminal_tables_cut_ids_to_a_unique_prefix():
    from lwdock.cli._output import unique_prefix_length

    a, b = "ab" * 6 + "cd" + "0" * 50, "ab" * 6 + "ce" + "0" * 50
    assert unique_prefix_length([a, b]) == 14
    assert unique_prefix_length([a, "f" * 64]) == 12
    assert unique_prefix_length([]) == 12


def test_submit_exist_ok_sets_the_alias_it_was_given(tmp_path, backend):
    from _factory import learnware_zip

    dock = backend.init(tmp_path / "d")
    z = learnware_zip(tmp_path / "lw.zip")
    first = dock.submit(z, run_model=False)
    again = dock.submit(z, run_model=False, alias="mine", exist_ok=True)
    assert again.id == first.id and again.alias == "mine" and dock.get("mine").id == first.id
