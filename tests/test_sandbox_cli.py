"""The sandbox through the installed ``lwdock`` script: modes, refusal, reports, killed checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _factory import learnware_files, write_zip
from _procs import processes_with

from lwdock.errors import ExitCode
from lwdock.store.dock import Dock


def _run(lwdock_bin, *args, env=None, **kw):
    base = {k: v for k, v in os.environ.items() if k != "LWDOCK_SANDBOX"}  # conftest may set it; tests choose
    return subprocess.run([lwdock_bin, *args], capture_output=True, text=True, timeout=300,
                          env={**base, **(env or {})}, **kw)


def test_check_reports_the_kernel_sandbox(lwdock_bin, tmp_path, kernel_sandbox):
    z = write_zip(tmp_path / "good.zip", learnware_files())
    res = _run(lwdock_bin, "--dock", str(tmp_path / "d"), "check", str(z), "--json")
    assert res.returncode == 0, res.stderr
    sb = json.loads(res.stdout)["sandbox"]
    assert sb["mode"] == "kernel" and sb["network"].startswith("none") and "bubblewrap" in sb["tool"]
    assert "RLIMIT_NPROC" in sb["processes"] and "warning" not in sb
    assert "weak" not in res.stderr


def test_weak_mode_is_explicit_and_warns_every_run(lwdock_bin, tmp_path):
    z = write_zip(tmp_path / "good.zip", learnware_files())
    for args, env in ((["--sandbox", "weak"], {}), ([], {"LWDOCK_SANDBOX": "weak"})):
        res = _run(lwdock_bin, "--dock", str(tmp_path / "d"), *args, "check", str(z), "--json", env=env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["sandbox"]["mode"] == "weak"
        assert "--sandbox weak: learnware code runs with resource limits only" in res.stderr


def test_unknown_modes_are_usage_errors(lwdock_bin, tmp_path):
    z = write_zip(tmp_path / "good.zip", learnware_files())
    res = _run(lwdock_bin, "--sandbox", "none", "check", str(z))
    assert res.returncode == ExitCode.USAGE and "error: unknown sandbox mode 'none'" in res.stderr
    res = _run(lwdock_bin, "check", str(z), env={"LWDOCK_SANDBOX": "off"})
    assert res.returncode == ExitCode.USAGE and "LWDOCK_SANDBOX='off'" in res.stderr


def test_without_isolation_learnware_code_is_refused(lwdock_bin, tmp_path):
    dock = Dock.init(tmp_path / "d")
    z = write_zip(tmp_path / "good.zip", learnware_files())
    no_bwrap = {"PATH": str(tmp_path / "empty-bin")}  # bwrap cannot be found
    for cmd in (["check", str(z)], ["submit", str(z)]):
        res = _run(lwdock_bin, "--dock", str(dock.path), *cmd, env=no_bwrap)
        assert res.returncode == ExitCode.ENV, res.stderr
        lines = res.stderr.strip().splitlines()
        assert lines == ["error: refusing to run learnware code without kernel isolation: bubblewrap (bwrap) "
                         "is not installed", f"hint: {lines[1][6:]}"] and "--sandbox weak" in lines[1]
    assert dock.entries() == [] and list(dock.layout.tmp.iterdir()) == []
    # checks that run no learnware code need no sandbox
    res = _run(lwdock_bin, "--dock", str(dock.path), "submit", str(z), "--no-run", env=no_bwrap)
    assert res.returncode == 0, res.stderr


SLOW = '''
import subprocess
import time

import numpy as np


class Model:
    input_shape, output_shape = (2,), (2,)

    def predict(self, X):
        subprocess.Popen(["/bin/sh", "-c", "sleep 120", "@MARKER@"], start_new_session=True)
        time.sleep(120)
'''


def _killed_check(lwdock_bin, tmp_path, scratch: Path, args: list[str]) -> str:
    marker = f"lwdock-killed-{uuid.uuid4().hex}"
    files = {**learnware_files(), "__init__.py": SLOW.replace("@MARKER@", marker)}
    files["learnware.yaml"] = files["learnware.yaml"].replace("  kwargs: {dim: 2, n_classes: 2}\n", "")
    z = write_zip(tmp_path / "slow.zip", files)
    proc = subprocess.Popen([lwdock_bin, *args, "check", str(z), "--timeout", "200"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not processes_with(marker, wait=0):
        assert proc.poll() is None and time.monotonic() < deadline, "the model never started"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # lwdock dies without any chance to clean up
    proc.wait()
    assert processes_with(marker) == [], "the sandbox outlived lwdock"
    assert [p.name.split("-")[0] for p in scratch.iterdir()] == ["check"], "the killed check left no scratch?"
    return marker


def test_a_killed_check_leaves_no_process_and_doctor_cleans_its_scratch(lwdock_bin, tmp_path, kernel_sandbox):
    dock = Dock.init(tmp_path / "d")
    _killed_check(lwdock_bin, tmp_path, dock.layout.tmp, ["--dock", str(dock.path)])
    report = dock.doctor()
    assert any(r.startswith("leftover scratch check-") for r in report.repaired)
    assert list(dock.layout.tmp.iterdir()) == []


def test_without_a_dock_the_next_check_cleans_the_cache(lwdock_bin, tmp_path, kernel_sandbox):
    cache = tmp_path / "cache" / "lwdock" / "tmp"  # XDG_CACHE_HOME (conftest)
    _killed_check(lwdock_bin, tmp_path, cache, ["--dock", str(tmp_path / "no-dock-here")])
    from lwdock.check.checks import check_zip

    check_zip(write_zip(tmp_path / "good.zip", learnware_files()), envs_dir=tmp_path / "envs", run_model=False)
    assert list(cache.iterdir()) == []


def test_kill_of_a_library_caller_takes_the_workers_with_it(tmp_path, kernel_sandbox):
    marker = f"lwdock-lib-{uuid.uuid4().hex}"
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(SLOW.replace("@MARKER@", marker).replace("time.sleep(120)", "return X"))
    code = (f"from lwdock.check.runner import ModelWorker; import numpy as np, threading, time\n"
            f"w = ModelWorker({str(pkg)!r}, workdir_base={str(tmp_path / 'work')!r})\n"
            # started from a short-lived thread: the worker must survive that thread, and die with the process
            f"t = threading.Thread(target=w.start); t.start(); t.join(); w.predict(np.zeros((1, 2)))\n"
            f"print('ready', flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while not processes_with(marker, wait=0):  # the model's child, after its exec
            assert time.monotonic() < deadline, "the model's child never showed up"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert processes_with(marker) == []
