"""The sandboxed model worker, driven directly (current interpreter, no env build).

The hostile learnwares that attack the dock itself are in test_hostile_learnwares.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from _procs import processes_with

from lwdock.check import sandbox
from lwdock.check.runner import ModelWorker
from lwdock.check.worker import decode_array
from lwdock.errors import ExitCode, ModelRuntimeError, SandboxUnavailableError

HEADER = """
import os, sys, time
import numpy as np

class Model:
    def __init__(self, dim=3):
        self.input_shape = (dim,)
        self.output_shape = (1,)
"""


def make_pkg(tmp_path: Path, predict_body: str, name: str = "pkg", extra: str = "") -> Path:
    root = tmp_path / name
    root.mkdir()
    code = HEADER + extra + "\n    def predict(self, X):\n" + textwrap.indent(textwrap.dedent(predict_body), " " * 8)
    (root / "__init__.py").write_text(code)
    return root


def worker(root: Path, tmp_path: Path, **kw) -> ModelWorker:
    base = tmp_path / "work"
    base.mkdir(exist_ok=True)
    kw.setdefault("timeout", 20)
    return ModelWorker(root, workdir_base=base, **kw)


def assert_clean(w: ModelWorker, tmp_path: Path) -> None:
    assert w.proc is not None and w.proc.poll() is not None, "worker process still running"
    assert list((tmp_path / "work").iterdir()) == [], "worker directory left behind"


def test_predict_many_batches_matches_direct(tmp_path):
    root = make_pkg(tmp_path, "X = np.asarray(X)\nreturn X @ np.arange(1, X.shape[1] + 1)\n")
    X = np.random.default_rng(0).normal(size=(5000, 3))
    w = worker(root, tmp_path, batch_bytes=8 * 3 * 700)  # about 8 batches
    with w:
        assert w.info()["input_shape"] == [3]
        assert w.info()["output_shape"] == [1]
        y = w.predict(X)
        y2 = w.predict(X[:10])
        assert w.calls >= 9  # one process served every batch
    np.testing.assert_allclose(y, X @ np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(y2, y[:10])
    assert_clean(w, tmp_path)


def test_printing_model_does_not_break_protocol(tmp_path):
    body = """
    for i in range(20000):
        print('{"ok": false, "error": "forged"}', i)
    sys.stdout.flush()
    os.write(1, b'{"ok": true, "nbytes": 99999}\\n' * 100)
    return np.asarray(X).sum(axis=1)
    """
    root = make_pkg(tmp_path, body)
    X = np.ones((7, 3))
    with worker(root, tmp_path) as w:
        np.testing.assert_allclose(w.predict(X), np.full(7, 3.0))
        assert "forged" in w.logs()["stdout"]  # it went to the log, not to us


def test_text_input_reaches_model_as_list_of_str(tmp_path):
    root = make_pkg(tmp_path, "assert isinstance(X, list) and isinstance(X[0], str)\nreturn np.array([len(s) for s in X])\n")
    with worker(root, tmp_path) as w:
        out = w.predict(["ab", "cde", ""])
    np.testing.assert_array_equal(out, [2, 3, 0])


def test_sleeping_model_times_out_and_is_killed(tmp_path):
    root = make_pkg(tmp_path, "time.sleep(3600)\n")
    w = worker(root, tmp_path, timeout=1.5)
    with w:
        with pytest.raises(ModelRuntimeError, match="timed out"):
            w.predict(np.zeros((2, 3)))
        assert not w.alive
        with pytest.raises(ModelRuntimeError, match="exited"):
            w.predict(np.zeros((2, 3)))
    assert_clean(w, tmp_path)


def test_memory_hog_hits_the_limit(tmp_path):
    root = make_pkg(tmp_path, "big = np.ones((64, 2**30), dtype=np.uint8)\nreturn big[:, 0]\n")
    w = worker(root, tmp_path, memory_mb=1024)
    with w:
        with pytest.raises(ModelRuntimeError, match="MemoryError"):
            w.predict(np.zeros((2, 3)))
        # the worker survives its model's MemoryError and still serves
        assert w.alive
    assert_clean(w, tmp_path)


@pytest.mark.parametrize(("body", "said"), [("os._exit(7)", "exit code 7"), ("os.kill(os.getpid(), 9)", "SIGKILL")])
def test_exit_and_signals_are_reported(tmp_path, body, said):
    root = make_pkg(tmp_path, body + "\n")
    w = worker(root, tmp_path)
    with w:
        with pytest.raises(ModelRuntimeError, match=said):
            w.predict(np.zeros((2, 3)))
    assert_clean(w, tmp_path)


def test_endless_stdout_flood_hits_file_size_limit(tmp_path):
    root = make_pkg(tmp_path, "while True:\n    print('x' * 10000)\n")
    w = worker(root, tmp_path, file_mb=4, timeout=30)
    with w:
        with pytest.raises(ModelRuntimeError, match="File too large"):
            w.predict(np.zeros((2, 3)))
    assert_clean(w, tmp_path)


def test_write_outside_the_sandbox_fails_and_nothing_appears(tmp_path, kernel_sandbox):
    target = tmp_path / "outside.txt"
    body = f"open({str(target)!r}, 'w').write('pwned')\nreturn np.zeros(len(X))\n"
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        with pytest.raises(ModelRuntimeError, match="(FileNotFoundError|PermissionError|OSError)"):
            w.predict(np.zeros((2, 3)))
        assert w.alive
    assert not target.exists()


def test_own_package_files_are_read_only(tmp_path, kernel_sandbox):
    body = """
    here = os.path.dirname(__file__)
    errs = []
    for attempt in (lambda: open(os.path.join(here, '__init__.py'), 'a').write('#'),
                    lambda: open(os.path.join(here, 'new.py'), 'w').write('x')):
        try:
            attempt()
        except OSError as e:
            errs.append(e.errno)
    return np.array(errs + [0] * (len(X) - len(errs)))
    """
    root = make_pkg(tmp_path, body)
    before = (root / "__init__.py").read_bytes()
    with worker(root, tmp_path) as w:
        out = w.predict(np.zeros((3, 3)))
    import errno

    assert all(e in (errno.EROFS, errno.EACCES) for e in out.tolist()[:2])
    assert (root / "__init__.py").read_bytes() == before and not (root / "new.py").exists()


def test_write_inside_workdir_and_tmp_is_allowed(tmp_path):
    body = """
    import tempfile
    open('scratch.txt', 'w').write('ok')
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'ok')
    open(os.path.join(os.environ['HOME'], 'home.txt'), 'w').write('ok')
    return np.zeros(len(X))
    """
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        assert w.predict(np.zeros((2, 3))).shape == (2,)


def test_no_network_at_all(tmp_path, kernel_sandbox):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    body = f"""
    import socket
    errs = []
    for addr in (('127.0.0.1', {port}), ('1.1.1.1', 53)):
        try:
            socket.create_connection(addr, timeout=2)
            errs.append(0)
        except OSError:
            errs.append(1)
    return np.array(errs + [0] * (len(X) - len(errs)))
    """
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        out = w.predict(np.zeros((3, 3)))
    assert out.tolist() == [1, 1, 0]
    with pytest.raises(socket.timeout):
        server.accept()  # the host's listener never saw a connection
    server.close()


def test_subprocesses_run_inside_and_die_with_the_worker(tmp_path, kernel_sandbox):
    marker = f"lwdock-test-{uuid.uuid4().hex}"
    body = f"""
    import subprocess
    subprocess.Popen(['/bin/sh', '-c', 'sleep 60; : {marker}'], start_new_session=True)
    out = subprocess.run(['/bin/sh', '-c', 'echo $$'], capture_output=True, text=True).stdout
    return np.array([int(out)] * len(X))
    """
    root = make_pkg(tmp_path, body)
    w = worker(root, tmp_path)
    with w:
        pid_inside = w.predict(np.zeros((1, 3))).tolist()[0]
        assert processes_with(marker, wait=0), "the child should be running while the worker lives"
    assert pid_inside < 100  # its own PID namespace: small numbers, not the host's
    assert processes_with(marker) == [], "a detached child outlived the worker"
    assert_clean(w, tmp_path)


def test_kernel_mode_refuses_when_isolation_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "probe", lambda: "bubblewrap (bwrap) is not installed")
    root = make_pkg(tmp_path, "return X\n")
    w = worker(root, tmp_path, sandbox="kernel")
    with pytest.raises(SandboxUnavailableError, match="without kernel isolation") as err:
        w.start()
    assert "--sandbox weak" in err.value.hint and err.value.exit_code == ExitCode.ENV
    assert w.proc is None and list((tmp_path / "work").iterdir()) == []


def test_weak_mode_runs_and_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "probe", lambda: "no bubblewrap")
    root = make_pkg(tmp_path, "return np.asarray(X).sum(axis=1)\n")
    with caplog.at_level("WARNING", logger="lwdock"):
        for _ in range(2):
            with worker(root, tmp_path, sandbox="weak") as w:
                assert w.mode == "weak"
                np.testing.assert_allclose(w.predict(np.ones((2, 3))), [3.0, 3.0])
    warnings = [r for r in caplog.records if "--sandbox weak" in r.getMessage()]
    assert len(warnings) == 2  # once per run, every run


def test_object_array_output_is_refused(tmp_path):
    root = make_pkg(tmp_path, "return np.array([{'a': 1}] * len(X), dtype=object)\n")
    with worker(root, tmp_path) as w:
        with pytest.raises(ModelRuntimeError, match="object array"):
            w.predict(np.zeros((2, 3)))


def test_parent_never_unpickles_arrays():
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        decode_array(buf.getvalue())


def test_missing_import_fails_at_load(tmp_path):
    root = make_pkg(tmp_path, "return X\n", extra="")
    (root / "__init__.py").write_text("import surely_not_a_module_lwdock\n" + (root / "__init__.py").read_text())
    w = worker(root, tmp_path)
    with pytest.raises(ModelRuntimeError, match="surely_not_a_module_lwdock"):
        w.start()
    assert_clean(w, tmp_path)


def test_reference_style_learnware_uses_shim(tmp_path):
    root = tmp_path / "ref"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "helper.py").write_text("def scale(X):\n    return X * 2\n")
    (root / "model.py").write_text(textwrap.dedent("""
        import numpy as np
        from learnware.model import BaseModel
        from .sub.helper import scale

        class MyModel(BaseModel):
            def __init__(self, k=1):
                super().__init__(input_shape=(2,), output_shape=(1,))
                self.k = k

            def predict(self, X):
                return scale(np.asarray(X)).sum(axis=1) * self.k
    """))
    with worker(root, tmp_path, module="model.py", class_name="MyModel", kwargs={"k": 3}) as w:
        assert w.info()["class"] == "MyModel"
        np.testing.assert_allclose(w.predict(np.ones((4, 2))), np.full(4, 12.0))
    import importlib.util

    assert importlib.util.find_spec("learnware") is None  # the shim never leaks into lwdock


def test_runner_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "lwdock.runner", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--job" in out.stdout


def test_worker_environment_has_no_inherited_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("LWDOCK_TEST_SECRET", "hunter2")
    root = make_pkg(tmp_path, "return np.array([len(os.environ.get('LWDOCK_TEST_SECRET', ''))] * len(X))\n")
    with worker(root, tmp_path) as w:
        assert w.predict(np.zeros((1, 3))).tolist() == [0]
    assert os.environ["LWDOCK_TEST_SECRET"] == "hunter2"


def test_model_kwargs_travel_in_a_file_not_argv(tmp_path):
    big = "x" * 300_000  # more than one argv string may hold (MAX_ARG_STRLEN is 128 KiB)
    root = tmp_path / "kw"
    root.mkdir()
    (root / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np

        class Model:
            def __init__(self, s=""):
                self.s = s
                self.input_shape, self.output_shape = (3,), (1,)

            def predict(self, X):
                return np.full(len(X), len(self.s))
    """))
    with worker(root, tmp_path, kwargs={"s": big}) as w:
        assert w.predict(np.zeros((2, 3))).tolist() == [300_000, 300_000]
        cmdline = Path(f"/proc/{w.proc.pid}/cmdline").read_bytes()
    assert len(cmdline) < 100_000 and b"xxxx" not in cmdline

