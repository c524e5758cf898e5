"""Cached, chained virtualenvs (real venvs, real pip, a local wheel; no network)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from lwdock.check.envs import MARKER, EnvManager, env_key, normalise_requirements
from lwdock.errors import EnvBuildError, UsageError


def build_wheel(dest: Path, name: str = "tinylw_pkg", version: str = "0.1", value: int = 42) -> Path:
    """A minimal pure-python wheel, written by hand so nothing is downloaded."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: lwdock-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return whl


def run_py(python: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60)


def test_normalise_requirements():
    got = normalise_requirements(["# c", "", "Scikit_Learn>=1.0  # comment", "numpy", "numpy", "learnware==0.3.2", "NumPy"])
    assert got == ["numpy", "scikit-learn>=1.0"]
    with pytest.raises(EnvBuildError, match="not allowed"):
        normalise_requirements(["--index-url http://evil"])


def test_env_key_depends_on_requirement_set_only():
    assert env_key(["numpy", "scipy"]) == env_key(["scipy ", "NumPy", "# x"])
    assert env_key(["numpy"]) != env_key(["numpy", "scipy"])
    assert env_key(["numpy"], python="cpython-3.99.0") != env_key(["numpy"])


def test_unknown_manager_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        EnvManager(tmp_path, "conda")


def test_chained_env_sees_parent_packages_and_is_cached(tmp_path):
    mgr = EnvManager(tmp_path / "envs")
    env = mgr.ensure(["numpy", "scikit-learn"])  # both already in the parent: pip installs nothing
    assert env.created and env.path is not None and (env.path / MARKER).is_file()
    out = run_py(env.python, "import sys, numpy, sklearn; print(sys.prefix)")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == env.path  # a real venv of its own
    again = mgr.ensure(["scikit-learn", "numpy"])
    assert not again.created and again.key == env.key
    rows = mgr.list()
    assert [r["key"] for r in rows] == [env.key] and rows[0]["state"] == "ready"


def test_extra_requirement_from_local_wheel_lands_in_child_only(tmp_path):
    whl = build_wheel(tmp_path)
    mgr = EnvManager(tmp_path / "envs")
    env = mgr.ensure([f"tinylw-pkg @ {whl.as_uri()}"])
    out = run_py(env.python, "import tinylw_pkg, numpy; print(tinylw_pkg.VALUE, tinylw_pkg.__file__)")
    assert out.returncode == 0, out.stderr
    value, where = out.stdout.split()
    assert value == "42" and where.startswith(str(env.path))
    import importlib.util

    assert importlib.util.find_spec("tinylw_pkg") is None  # not in lwdock's own env


def test_uninstallable_requirement_fails_with_pips_reason(tmp_path):
    mgr = EnvManager(tmp_path / "envs")
    missing = (tmp_path / "nope-1.0-py3-none-any.whl").as_uri()
    with pytest.raises(EnvBuildError) as info:
        mgr.ensure([f"nope @ {missing}"])
    assert "nope" in str(info.value) and ("No such file" in str(info.value) or "ERROR" in str(info.value))
    assert mgr.list() == []  # nothing half-built is left to be used


def test_half_built_env_is_never_used(tmp_path):
    mgr = EnvManager(tmp_path / "envs")
    key = env_key([])
    broken = mgr.path_for(key)
    (broken / "bin").mkdir(parents=True)
    (broken / "junk").write_text("left by a crashed build")
    assert mgr.list()[0]["state"] == "incomplete"
    env = mgr.ensure([])
    assert env.created and not (broken / "junk").exists()
    assert run_py(env.python, "import numpy").returncode == 0


def test_concurrent_builders_build_once(tmp_path):
    whl = build_wheel(tmp_path, value=7)
    envs = tmp_path / "envs"
    code = textwrap.dedent(f"""
        import json, sys
        from lwdock.check.envs import EnvManager
        env = EnvManager({str(envs)!r}).ensure([{f'tinylw-pkg @ {whl.as_uri()}'!r}])
        print(json.dumps({{"created": env.created, "key": env.key}}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["key"] == results[1]["key"]
    assert sorted(r["created"] for r in results) == [False, True]
    assert len(EnvManager(envs).list()) == 1


def test_prune_dry_run_then_prune(tmp_path):
    mgr = EnvManager(tmp_path / "envs")
    a = mgr.ensure([])
    b = mgr.ensure(["numpy"])
    would = mgr.prune(dry_run=True)
    assert {r["key"] for r in would} == {a.key, b.key} and a.path.exists()
    gone = mgr.prune(keep={b.key})
    assert [r["key"] for r in gone] == [a.key] and not a.path.exists() and b.path.exists()
    mgr.prune()
    assert mgr.list() == []


def test_none_manager_uses_current_interpreter(tmp_path):
    env = EnvManager(tmp_path / "envs", "none").ensure(["numpy"])
    assert env.python == sys.executable and env.manager == "none" and env.path is None
    assert not (tmp_path / "envs").exists()


def test_env_builds_never_run_a_learnwares_build_code(tmp_path):
    # an sdist's setup.py would run in the lwdock process's context, outside the sandbox
    src = tmp_path / "evilpkg-1.0"
    src.mkdir()
    witness = tmp_path / "setup-py-ran"
    (src / "setup.py").write_text(f"open({str(witness)!r}, 'w')\nfrom setuptools import setup\n"
                                  "setup(name='evilpkg', version='1.0')\n")
    import tarfile

    sdist = tmp_path / "evilpkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        tf.add(src, arcname="evilpkg-1.0")
    mgr = EnvManager(tmp_path / "envs")
    for req in (f"evilpkg @ {sdist.as_uri()}", str(sdist), str(src), "evilpkg @ git+https://example.invalid/x.git"):
        with pytest.raises(EnvBuildError, match="not a package name or a wheel"):
            mgr.ensure([req])
    assert not witness.exists()
    assert mgr.list() == []
