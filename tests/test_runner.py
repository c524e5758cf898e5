"""The sandboxed model worker, driven directly (current interpreter, no env build)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lwdock.check import sandbox
from lwdock.check.runner import ModelWorker
from lwdock.check.worker import decode_array
from lwdock.errors import ModelRuntimeError

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


def test_os_exit_is_reported(tmp_path):
    root = make_pkg(tmp_path, "os._exit(7)\n")
    w = worker(root, tmp_path)
    with w:
        with pytest.raises(ModelRuntimeError, match="exit code 7"):
            w.predict(np.zeros((2, 3)))
    assert_clean(w, tmp_path)


def test_endless_stdout_flood_hits_file_size_limit(tmp_path):
    root = make_pkg(tmp_path, "while True:\n    print('x' * 10000)\n")
    w = worker(root, tmp_path, file_mb=4, timeout=30)
    with w:
        with pytest.raises(ModelRuntimeError, match="File too large"):
            w.predict(np.zeros((2, 3)))
    assert_clean(w, tmp_path)


def test_write_outside_workdir_is_refused(tmp_path):
    target = tmp_path / "outside.txt"
    body = f"open({str(target)!r}, 'w').write('pwned')\nreturn np.zeros(len(X))\n"
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        with pytest.raises(ModelRuntimeError, match="outside the worker directory"):
            w.predict(np.zeros((2, 3)))
        assert w.alive
    assert not target.exists()


def test_write_inside_workdir_and_tmp_is_allowed(tmp_path):
    body = """
    import tempfile
    open('scratch.txt', 'w').write('ok')
    with tempfile.NamedTemporaryFile() as f:
        f.write(b'ok')
    return np.zeros(len(X))
    """
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        assert w.predict(np.zeros((2, 3))).shape == (2,)


def test_network_and_subprocess_are_refused(tmp_path):
    body = """
    import socket, subprocess
    errs = []
    try:
        socket.create_connection(('127.0.0.1', 9), timeout=1)
    except OSError as e:
        errs.append(1)
    try:
        subprocess.run(['true'])
    except PermissionError:
        errs.append(2)
    return np.array(errs + [0] * (len(X) - len(errs)))
    """
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path) as w:
        out = w.predict(np.zeros((3, 3)))
    assert out.tolist() == [1, 2, 0]


@pytest.mark.skipif(not sandbox.network_prefix(), reason="unshare --net is not permitted on this machine")
def test_network_namespace_without_audit_hook(tmp_path):
    body = """
    import socket
    try:
        socket.create_connection(('1.1.1.1', 53), timeout=2)
        return np.array([1])
    except OSError:
        return np.array([0])
    """
    root = make_pkg(tmp_path, body)
    with worker(root, tmp_path, audit=False) as w:
        assert w.network_isolated
        assert w.predict(np.zeros((1, 3))).tolist() == [0]


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
    assert out.returncode == 0 and "--root" in out.stdout


def test_worker_environment_has_no_inherited_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("LWDOCK_TEST_SECRET", "hunter2")
    root = make_pkg(tmp_path, "return np.array([len(os.environ.get('LWDOCK_TEST_SECRET', ''))] * len(X))\n")
    with worker(root, tmp_path) as w:
        assert w.predict(np.zeros((1, 3))).tolist() == [0]
    assert os.environ["LWDOCK_TEST_SECRET"] == "hunter2"
