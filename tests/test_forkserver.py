"""Fast workers (issue 16): as root, kernel workers are forked from their environment's fork server.

The isolation itself is tested through these workers by test_runner.py, test_hostile_learnwares.py,
test_sandbox_cli.py and test_checks.py (CI runs as root); this file checks that they really are
forked, what a forked worker sees of itself, and the switch back to fresh workers.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lwdock.check import forkserver, sandbox
from lwdock.check.runner import ModelWorker

SELF = '''
import os, resource, socket
import numpy as np


class Model:
    input_shape, output_shape = (1,), (8,)

    def predict(self, X):
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=1)
            net = 1
        except OSError:
            net = 0
        try:
            open("/learnware/x", "w")
            writable = 1
        except OSError:
            writable = 0
        try:
            os.unshare(os.CLONE_NEWUSER)
            userns = 1
        except (OSError, AttributeError):
            userns = 0
        procs = len([p for p in os.listdir("/proc") if p.isdigit()])
        row = [os.getuid(), net, writable, userns, procs, resource.getrlimit(resource.RLIMIT_NPROC)[0],
               int(os.path.exists("/lwdock")), np.random.randint(1 << 30)]
        return np.array([row] * len(X), dtype=float)
'''


@pytest.fixture
def forked_only():
    """Runs only where workers come from a fork server: kernel sandbox, nested shape (root)."""
    tool = sandbox.probe()
    if isinstance(tool, str) or tool.style != "nested":
        pytest.skip("the fork server needs the nested sandbox shape (lwdock as root)")


def _self_report(tmp_path, name="pkg"):
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text(SELF)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    with ModelWorker(root, workdir_base=work, timeout=30) as w:
        row = w.predict(np.zeros((1, 1)))[0]
        kind = type(w.proc).__name__
    return kind, [int(v) for v in row]


@pytest.mark.usefixtures("kernel_sandbox", "forked_only")
def test_workers_are_forked_and_confined(tmp_path):
    kind, (uid, net, writable, userns, procs, nproc, jobfile, r1) = _self_report(tmp_path, "a")
    assert kind == "WorkerProcess" and forkserver.status()["unavailable"] == {}
    assert uid == 65534 and net == 0 and writable == 0 and userns == 0
    assert procs <= 2  # its PID 1 and itself: nothing of the server or of other workers
    assert nproc == sandbox.MAX_PROCESSES and jobfile == 0
    kind, (*_, r2) = _self_report(tmp_path, "b")
    assert r1 != r2  # each fork reseeds numpy's global generator


@pytest.mark.usefixtures("kernel_sandbox")
def test_the_switch_starts_workers_fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("LWDOCK_FORK_SERVER", "0")
    kind, (uid, net, writable, userns, *_) = _self_report(tmp_path)
    assert kind == "Popen"
    assert (uid, net, writable, userns) == (65534, 0, 0, 0)


@pytest.mark.usefixtures("kernel_sandbox", "forked_only")
def test_a_killed_fork_server_is_replaced(tmp_path):
    _self_report(tmp_path, "a")
    old = forkserver.server_pids()  # every server of this process (earlier tests may have started some)
    for pid in old:
        os.killpg(pid, 9)
    kind, _ = _self_report(tmp_path, "b")
    assert kind == "WorkerProcess" and forkserver.status()["unavailable"] == {}
    assert set(forkserver.server_pids()).isdisjoint(old)
