"""Client side of the sandboxed model runner: :class:`ModelWorker`.

One worker subprocess per model, started once (by ``lwdock.check.sandbox``,
inside kernel isolation unless the weak mode was chosen) and reused for many
predict calls. Every round trip has a deadline; on a timeout, a crash or a
protocol error the worker is killed (with everything it started) and a
:class:`~lwdock.errors.ModelRuntimeError` says why, with the tail of its stderr.

Model code runs in the worker process and can write anything to the reply
pipe, so no reply is trusted: the header line is capped, a reply may carry
data only in answer to ``predict``, its size is capped by the request's row
count *before* anything is allocated (and buffers grow only as bytes really
arrive), and the decoded array must have exactly the rows that were sent.

The worker's host directory (``<base>/worker-<pid>-<uuid>``: job file and logs,
never visible to the model) is removed on close, and at interpreter exit for
any worker still open; ``lwdock doctor`` removes what a killed process left.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from ..config import default_cache_dir
from ..errors import ModelRuntimeError
from .._scratch import new_dir
from .sandbox import KERNEL, MAX_PROCESSES, Limits, mode_for, require, start_worker

log = logging.getLogger("lwdock")

RUNNER = Path(__file__).resolve().parent.parent / "runner.py"
_LIVE: "weakref.WeakSet[ModelWorker]" = weakref.WeakSet()
_MAX_HEADER = 1 << 20
_NPY_HEADER = 1 << 16  # room for the .npy header of a reply
_FIRST_BUFFER = 16 << 20  # a reply buffer starts at most this big and grows as data arrives


def _widen_pipe(fd: int) -> None:
    # 1 MiB pipes (Linux) cut the round trips of a large batch by 16x
    import fcntl

    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class ModelWorker:
    """A learnware model served by a sandboxed subprocess.

    >>> with ModelWorker(pkg_root, python=env.python) as w:   # doctest: +SKIP
    ...     w.info()["input_shape"]
    ...     y = w.predict(X)

    ``timeout`` bounds each round trip (one batch), ``start_timeout`` the import
    and instantiation. ``memory_mb``/``cpu_seconds``/``file_mb``/``max_processes``
    are kernel limits on the worker and ``scratch_mb`` the size of its private
    /tmp. ``sandbox`` is "kernel" or "weak" (default: ``--sandbox``, then
    ``LWDOCK_SANDBOX``, then "kernel"; see :mod:`lwdock.check.sandbox`).
    ``max_row_bytes`` caps the reply to a predict call per input row. The
    worker's host directory goes under ``workdir_base`` (``<dock>/tmp`` in a
    dock; default: the per-user cache directory).
    """

    def __init__(self, root: str | os.PathLike[str], *, module: str = "__init__.py", class_name: str = "Model",
                 kwargs: dict | None = None, python: str | None = None, timeout: float = 60.0,
                 start_timeout: float = 120.0, memory_mb: int | None = 4096, cpu_seconds: int | None = 3600,
                 file_mb: int | None = 1024, max_processes: int | None = MAX_PROCESSES, scratch_mb: int = 512,
                 sandbox: str | None = None, batch_bytes: int = 64 * 2**20, max_output_bytes: int = 2 * 2**30,
                 max_row_bytes: int = 16 * 2**20, workdir_base: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root)
        self.module = module
        self.class_name = class_name
        self.kwargs = dict(kwargs or {})
        python = python or sys.executable
        self.python = str(Path(python).absolute()) if os.sep in python else python
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.limits = Limits(memory_mb=memory_mb, cpu_seconds=cpu_seconds, file_mb=file_mb,
                             max_processes=max_processes, scratch_mb=scratch_mb)
        self.sandbox = sandbox
        self.mode: str | None = None  # "kernel" or "weak" once started
        self.batch_bytes = batch_bytes
        self.max_output_bytes = max_output_bytes
        self.max_row_bytes = max_row_bytes
        self.workdir_base = workdir_base
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._info: dict | None = None
        self._buf = bytearray()
        self._stderr_tail = ""
        self.calls = 0
        self.last_pytype = ""

    # -- life cycle ----------------------------------------------------------------
    def __enter__(self) -> "ModelWorker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "ModelWorker":
        if self.proc is not None:
            return self
        self.mode = mode_for(self.sandbox)
        tool = require(self.mode)  # refuses before anything is created
        self.workdir = new_dir(self.workdir_base or default_cache_dir() / "tmp", "worker")
        self._stderr_file = open(self.workdir / "stderr.log", "wb")  # noqa: SIM115 - closed in close()
        stdout_fd = os.open(self.workdir / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        model = {"module": self.module, "class_name": self.class_name, "kwargs": self.kwargs}
        try:
            self.proc = start_worker(mode=self.mode, tool=tool, python=self.python, runner=str(RUNNER),
                                             package_root=self.root, workdir=self.workdir, model=model,
                                             limits=self.limits, stdout_fd=stdout_fd, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self._stderr_file)
        except OSError as exc:
            self.close()
            raise ModelRuntimeError(f"cannot start the model worker with {self.python}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise
        finally:
            os.close(stdout_fd)
        _LIVE.add(self)
        try:
            for f in (self.proc.stdout, self.proc.stdin):
                os.set_blocking(f.fileno(), False)
                _widen_pipe(f.fileno())
            msg, _ = self._recv(time.monotonic() + self.start_timeout, "start", max_bytes=0)
            if not msg.get("ok"):
                self._kill()
                raise ModelRuntimeError(f"model did not load: {_text(msg.get('error'), 'unknown error')}",
                                        hint=self._hint())
        except BaseException:
            self.close()  # no process and no directory left behind
            raise
        self._info = _checked_info(msg.get("info"))
        return self

    def close(self) -> None:
        """Ask the worker to stop, kill it if it does not, and remove its directory."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                self._send({"op": "shutdown"}, [], time.monotonic() + 2)
                proc.wait(timeout=2)
            except (ModelRuntimeError, subprocess.TimeoutExpired, OSError):
                pass
        self._kill()
        if getattr(self, "_stderr_file", None) is not None:
            self._stderr_file.close()
            self._stderr_file = None
        if self.workdir is not None:
            self._stderr_tail = self._read_tail("stderr.log") or self._stderr_tail
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        _LIVE.discard(self)

    def _kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                # the whole group; in kernel mode the group is bwrap (or, for a forked worker,
                # PID 1 of its namespace), and its death takes the sandbox's PID namespace, so
                # everything the model started, with it
                if hasattr(proc, "kill_tree"):
                    proc.kill_tree()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
            pass
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    # -- calls -------------------------------------------------------------------------
    def info(self) -> dict:
        """``{"input_shape", "output_shape", "class", "has_predict"}`` as reported by the model."""
        self._require()
        return dict(self._info or {})

    def predict(self, X: Any, *, timeout: float | None = None) -> Any:
        """``model.predict(X)`` in the worker, in batches of about ``batch_bytes`` each.

        ``X`` may be an ndarray or a list of str (text). The result is always an
        ndarray read with ``allow_pickle=False``, with one row per row of ``X``.
        """
        import numpy as np

        from .worker import encode_parts

        self._require()
        X = np.asarray(X)
        if X.dtype.hasobject:
            raise ModelRuntimeError("input is an object array; pass numbers or strings")
        n = X.shape[0] if X.ndim else 1
        row_bytes = max(1, X.nbytes // max(n, 1))
        step = max(1, self.batch_bytes // row_bytes)
        parts = []
        for start in range(0, max(n, 1), step):
            chunk = X[start : start + step] if X.ndim else X
            rows = chunk.shape[0] if chunk.ndim else 1
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            self._send({"op": "predict"}, encode_parts(chunk), deadline)
            cap = min(self.max_output_bytes, _NPY_HEADER + rows * self.max_row_bytes)
            msg, payload = self._recv(deadline, "predict", max_bytes=cap)
            if not msg.get("ok"):
                raise ModelRuntimeError(f"model predict failed: {_text(msg.get('error'), 'unknown error')}",
                                        hint=self._hint())
            parts.append(self._decode(payload, rows))
            self.last_pytype = _text(msg.get("pytype"), "")[:200]
            self.calls += 1
        if len(parts) == 1:
            return parts[0]
        try:
            return np.concatenate(parts, axis=0)
        except ValueError as exc:
            raise ModelRuntimeError(f"model outputs of different batches do not stack: {exc}") from None

    def _decode(self, payload: bytearray, rows: int) -> Any:
        from .worker import decode_array

        try:
            out = decode_array(payload)
        except ValueError as exc:  # object arrays need pickle: refused here as well
            self._kill()
            raise ModelRuntimeError(f"worker sent an unreadable array: {exc}") from None
        got = out.shape[0] if out.ndim else None
        if got != rows:
            raise ModelRuntimeError(f"model predict on {rows} rows returned "
                                    f"{'a scalar' if got is None else f'{got} rows'}")
        return out

    # -- plumbing ----------------------------------------------------------------------
    def _require(self) -> None:
        if self.proc is None:
            raise ModelRuntimeError("the model worker is not started")
        if self.proc.poll() is not None:
            raise ModelRuntimeError(f"the model worker has exited ({self._exit_text()})", hint=self._hint())

    def _send(self, msg: dict, parts: list[Any], deadline: float) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        n = sum(len(p) for p in parts)
        if n:
            msg = dict(msg, nbytes=n)
        fd = self.proc.stdin.fileno()
        for part in [json.dumps(msg).encode() + b"\n", *parts]:
            data = memoryview(part).cast("B")
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail_timeout("sending input")
                _, w, _ = select.select([], [fd], [], min(left, 1.0))
                if not w:
                    if self.proc.poll() is not None:
                        self._fail_died("sending input")
                    continue
                try:
                    k = os.write(fd, data[: 1 << 20])
                except BlockingIOError:
                    continue
                except OSError:  # broken pipe: the worker is gone
                    self._fail_died("sending input")
                data = data[k:]

    def _read_once(self, view: memoryview, deadline: float, what: str) -> int:
        """Wait for the worker's pipe, then read what is there into ``view`` (at least 1 byte)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail_timeout(what)
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                continue
            try:
                k = os.readv(fd, [view])
            except BlockingIOError:
                continue
            if k == 0:
                self._fail_died(what)
            return k

    def _read_into(self, view: memoryview, deadline: float, what: str) -> None:
        """Fill ``view`` from the worker's pipe before ``deadline``."""
        while len(view):
            view = view[self._read_once(view, deadline, what) :]

    def _recv(self, deadline: float, what: str, *, max_bytes: int) -> tuple[dict, bytearray]:
        """One reply: its header, and at most ``max_bytes`` of data (checked before any allocation)."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                break
            if len(self._buf) > _MAX_HEADER:
                self._kill()
                raise ModelRuntimeError("model worker broke the protocol (header too long)")
            chunk = bytearray(1 << 16)
            view = memoryview(chunk)
            self._read_some(view, deadline, what, chunk)
        line = bytes(self._buf[:nl])
        del self._buf[: nl + 1]
        try:
            msg = json.loads(line)
            nbytes = msg.get("nbytes", 0) if isinstance(msg, dict) else -1
        except (ValueError, TypeError, RecursionError):
            msg, nbytes = None, -1
        if not isinstance(msg, dict) or not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            self._kill()
            raise ModelRuntimeError("model worker broke the protocol (bad header)")
        if nbytes > max_bytes:
            self._kill()
            raise ModelRuntimeError(f"model worker broke the protocol: a {what} reply of {nbytes} bytes "
                                    f"(at most {max_bytes} allowed for this request)")
        return msg, self._read_payload(nbytes, deadline, what)

    def _read_payload(self, nbytes: int, deadline: float, what: str) -> bytearray:
        # the buffer grows only as bytes arrive: a header that lies about its size costs nothing
        payload = bytearray(min(nbytes, max(_FIRST_BUFFER, len(self._buf))))
        have = min(nbytes, len(self._buf))
        payload[:have] = self._buf[:have]
        del self._buf[:have]
        while have < nbytes:
            if have == len(payload):
                payload.extend(bytes(min(len(payload), nbytes - len(payload))))
            with memoryview(payload) as view:
                have += self._read_once(view[have:], deadline, what)
        return payload

    def _read_some(self, view: memoryview, deadline: float, what: str, chunk: bytearray) -> None:
        self._buf += chunk[: self._read_once(view, deadline, what)]

    def _fail_timeout(self, what: str) -> None:
        self._kill()
        raise ModelRuntimeError(f"model timed out while {what if what != 'start' else 'loading'} "
                                f"(limit {self.timeout if what != 'start' else self.start_timeout:g}s); worker killed",
                                hint="raise the timeout if the model is just slow")

    def _fail_died(self, what: str) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._kill()
        tail = self._tail_line()
        raise ModelRuntimeError(f"model worker died during {what} ({self._exit_text()})" + (f": {tail}" if tail else ""),
                                hint=self._hint())

    def _exit_text(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        if code is None:
            return "still running"
        if self.mode == KERNEL and 128 < code < 128 + 65:
            code = 128 - code  # bwrap reports a child killed by signal N as 128 + N
        if code < 0:
            name = _signal_name(code)
            why = {"SIGKILL": "killed", "SIGXCPU": "CPU-time limit hit", "SIGSEGV": "crashed",
                   "SIGXFSZ": "file-size limit hit"}.get(name, "signalled")
            return f"{why}, {name}"
        return f"exit code {code}"

    def _read_tail(self, name: str, n: int = 4000) -> str:
        if self.workdir is None:
            return ""
        try:
            with open(self.workdir / name, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _tail_line(self) -> str:
        text = self._read_tail("stderr.log") or self._stderr_tail
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""

    def _hint(self) -> str | None:
        return "see the model's stderr with --debug" if self._tail_line() else None

    def logs(self) -> dict[str, str]:
        """The tails of the worker's stdout and stderr logs (while it is open)."""
        return {"stdout": self._read_tail("stdout.log"), "stderr": self._read_tail("stderr.log") or self._stderr_tail}


def _text(value: Any, default: str) -> str:
    """A string field of a reply (replies are untrusted: anything else becomes ``default``)."""
    return " ".join(value.split())[:2000] if isinstance(value, str) else default


def _checked_info(info: Any) -> dict:
    """The ready message's model description, reduced to the expected fields and types."""
    info = info if isinstance(info, dict) else {}

    def shape(v: Any) -> Any:
        if isinstance(v, list) and len(v) <= 32 and all(isinstance(i, int) and not isinstance(i, bool) for i in v):
            return v
        return None if v is None else _text(v, "?")[:200]

    return {"input_shape": shape(info.get("input_shape")), "output_shape": shape(info.get("output_shape")),
            "class": _text(info.get("class"), "?")[:200], "has_predict": info.get("has_predict") is True}


@atexit.register
def _close_all() -> None:
    for w in list(_LIVE):
        try:
            w.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
