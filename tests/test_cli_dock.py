"""CLI tests for the dock commands (CliRunner), plus real `lwdock` subprocesses.

Every dock is created through conftest's ``backend``: each test runs on a local dock and on a
team dock (PostgreSQL index + S3 blobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from _factory import learnware_zip
from lwdock.cli import app
from lwdock.errors import ExitCode


def run(*args, dock=None):
    argv = (["--dock", str(dock)] if dock else []) + [str(a) for a in args]
    return CliRunner().invoke(app, argv)


def test_init_submit_list_show_export_remove(tmp_path, backend):
    d = tmp_path / "d"
    assert run("init", "--gamma", "0.2", *backend.init_args(), dock=d).exit_code == 0
    z = learnware_zip(tmp_path / "a.zip", seed=1, name="alpha model")
    r = run("submit", z, "--no-run", "--alias", "alpha", dock=d)
    assert r.exit_code == 0, r.output
    lw_id = r.stdout.strip()
    assert len(lw_id) == 64 and "submitted" in r.stderr  # data on stdout, messages on stderr

    r = run("--json", "list", dock=d)
    rows = json.loads(r.stdout)
    assert [row["id"] for row in rows] == [lw_id] and rows[0]["alias"] == "alpha"
    assert run("list", "-q", dock=d).stdout.split() == [lw_id]
    assert run("list", "--task", "Regression", "-q", dock=d).stdout.split() == []

    r = run("show", "alpha", "--json", dock=d)
    shown = json.loads(r.stdout)
    assert shown["id"] == lw_id and shown["semantic"]["Name"]["Values"] == "alpha model"

    out = tmp_path / "copy.zip"
    assert run("export", lw_id[:8], "-o", out, dock=d).exit_code == 0
    assert out.read_bytes() == z.read_bytes()

    r = run("remove", "alpha", dock=d)  # no --yes and no terminal: refuse
    assert r.exit_code == ExitCode.USAGE and "--yes" in r.stderr
    r = run("remove", "alpha", "--dry-run", "--json", dock=d)
    assert json.loads(r.stdout)["dry_run"] is True
    assert run("remove", "alpha", "--yes", dock=d).exit_code == 0
    assert run("--json", "list", dock=d).stdout.strip() == "[]"


def test_error_exit_codes(tmp_path, backend):
    d = tmp_path / "d"
    r = run("list", dock=d)
    assert r.exit_code == ExitCode.DOCK and "not an lwdock dock" in r.stderr
    assert run("init", *backend.init_args(), dock=d).exit_code == 0
    r = run("show", "deadbeef", dock=d)
    assert r.exit_code == ExitCode.NOT_FOUND
    assert r.stderr.count("\n") <= 2 and "Traceback" not in r.output
    z = learnware_zip(tmp_path / "a.zip", seed=2)
    assert run("submit", z, "--no-run", dock=d).exit_code == 0
    r = run("submit", z, "--no-run", dock=d)
    assert r.exit_code == ExitCode.CONFLICT
    assert run("submit", z, "--no-run", "--exist-ok", dock=d).exit_code == 0
    z2 = learnware_zip(tmp_path / "b.zip", seed=5)
    r = run("submit", z2, "--no-run", "--task", "Juggling", dock=d)
    assert r.exit_code == ExitCode.BAD_PACKAGE and "allowed:" in r.stderr and "Classification" in r.stderr


def test_debug_shows_traceback(tmp_path):
    r = run("--debug", "list", dock=tmp_path / "missing")
    assert r.exit_code == ExitCode.DOCK and "Traceback" in r.stderr


def test_semantic_flags_build_the_spec(tmp_path, backend):
    d = tmp_path / "d"
    assert run("init", *backend.init_args(), dock=d).exit_code == 0
    z = learnware_zip(tmp_path / "s.zip", seed=3, semantic=False)
    r = run(
        "submit", z, "--no-run", "--name", "flag model", "--data-type", "table", "--task", "classification",
        "--input-dim", "2", "--output-dim", "2", "--scenario", "Health", "--license", "MIT", "--json", dock=d,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    entry = json.loads(run("show", json.loads(r.stdout)["id"], "--json", dock=d).stdout)
    assert entry["semantic"]["Task"]["Values"] == ["Classification"]
    assert entry["semantic"]["Scenario"]["Values"] == ["Health"]


def test_doctor_cli(tmp_path, backend):
    d = tmp_path / "d"
    assert run("init", *backend.init_args(), dock=d).exit_code == 0
    r = run("doctor", "--json", dock=d)
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True


def test_real_subprocess_and_env_var(tmp_path, lwdock_bin, backend):
    d = tmp_path / "home"
    env = {**os.environ, "LWDOCK_HOME": str(d), **backend.init_env()}  # the team dock by LWDOCK_INDEX/BLOBS
    subprocess.run([lwdock_bin, "init"], env=env, check=True, capture_output=True)
    z = learnware_zip(tmp_path / "p.zip", seed=4)
    p = subprocess.run([lwdock_bin, "submit", str(z), "--no-run", "-q"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lw_id = p.stdout.strip()
    p = subprocess.run([lwdock_bin, "--json", "list"], env=env, capture_output=True, text=True)
    assert json.loads(p.stdout)[0]["id"] == lw_id
    p = subprocess.run([lwdock_bin, "show", "zz-not-there"], env=env, capture_output=True, text=True)
    assert p.returncode == ExitCode.NOT_FOUND and p.stdout == ""
    assert p.stderr.startswith("error: ")


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from lwdock.cli import app\n"
        "heavy = [m for m in ('numpy', 'torch', 'tinydb', 'scipy', 'sklearn', 'cvxopt') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == ""


def test_closed_stdout_is_quiet(tmp_path, lwdock_bin, backend):
    # `lwdock list -q | head -1`: no "internal error" when the reader has gone away
    dock = tmp_path / "d"
    assert run("init", *backend.init_args(), dock=dock).exit_code == 0
    run("submit", learnware_zip(tmp_path / "a.zip", seed=9), "--no-run", dock=dock)
    r, w = os.pipe()
    os.close(r)  # every write to w now fails with EPIPE
    try:
        cmd = [lwdock_bin, "--dock", str(dock), "list", "-q"]
        p = subprocess.run(cmd, stdout=w, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert p.returncode != 0 and "error" not in p.stderr


def test_every_command_has_help_and_is_in_the_readme():
    from pathlib import Path

    import typer

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    root = typer.main.get_command(app)
    seen = []
    stack = [("", root)]
    while stack:
        prefix, cmd = stack.pop()
        for name, sub in getattr(cmd, "commands", {}).items():
            full = f"{prefix}{name}"
            assert (sub.help or "").strip(), f"`lwdock {full}` has no help text"
            stack.append((full + " ", sub))
            seen.append(full)
    missing = [c for c in seen if f"lwdock {c}" not in readme]
    assert not missing, f"commands missing from README: {missing}"
