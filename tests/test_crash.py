"""A submit killed partway leaves the learnware fully present or absent, and doctor agrees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from _factory import learnware_zip
from lwdock import Dock

SCRIPT = "import sys; from lwdock import Dock; Dock.open(sys.argv[1]).submit(sys.argv[2], run_model=False)"


def _killed_submit(dock, zip_path, point):
    env = {**os.environ, "LWDOCK_FAULT": point}
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(dock.path), str(zip_path)], env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()


@pytest.mark.parametrize("point", ["submit:after-blob", "submit:before-index"])
def test_kill_before_commit_leaves_no_entry(tmp_path, point):
    dock = Dock.init(tmp_path / "dock")
    z = learnware_zip(tmp_path / "a.zip", seed=1)
    _killed_submit(dock, z, point)
    assert dock.entries() == []  # absent: not half present
    report = dock.doctor(repair=False)
    assert report.ok and report.leftovers  # consistent: only garbage to clean up
    assert dock.doctor().ok
    assert dock.doctor(repair=False).leftovers == []
    assert list(dock.layout.objects.glob("*/*")) == []
    assert list(dock.layout.tmp.iterdir()) == []
    # and the same zip can be submitted again
    assert dock.submit(z, run_model=False).id


def test_kill_after_commit_leaves_a_complete_entry(tmp_path):
    dock = Dock.init(tmp_path / "dock")
    z = learnware_zip(tmp_path / "a.zip", seed=2)
    _killed_submit(dock, z, "submit:after-index")
    entries = dock.entries()
    assert len(entries) == 1
    assert dock.doctor(repair=False).ok
    assert (dock.unpacked_dir(entries[0].id) / "learnware.yaml").is_file()


def test_lock_is_released_when_holder_dies(tmp_path):
    dock = Dock.init(tmp_path / "dock", lock_timeout=5)
    code = (
        "import sys, os, signal; from lwdock import Dock\n"
        "d = Dock.open(sys.argv[1])\n"
        "with d.lock():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(dock.path)], capture_output=True)
    assert dock.entries() == []  # would time out if the lock were left behind


def test_lock_timeout_is_reported(tmp_path):
    import time

    from lwdock.errors import LockTimeoutError

    dock = Dock.init(tmp_path / "dock")
    code = "import sys, time; from lwdock import Dock\nwith Dock.open(sys.argv[1]).lock():\n    print('held', flush=True); time.sleep(30)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(dock.path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        waiting = Dock.open(dock.path, lock_timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(LockTimeoutError, match="lock"):
            waiting.entries()
        assert time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
