"""Fast sandboxed workers: one fork server per learnware environment (the lwdock side).

A fresh worker pays bubblewrap, an interpreter and its imports (numpy and scikit-learn: about
a second) for every learnware. The fork server of an environment (``lwdock.check.zygote``)
pays them once; each worker is a fork of it that confines itself before anything of its
learnware is read, in the same namespaces, mounts, uid and limits as a bubblewrap worker
(docs/sandbox.md, "The fork server").

The learnware reaches the worker as a detached, read-only mount (``open_tree`` here,
``move_mount`` there): the server itself never sees a learnware or a job. Workers get a
fresh uid each, and the server needs the privileges to hand out uids and build mounts, so
this path is used in the ``nested`` shape (lwdock runs as root) only; as an ordinary user,
and whenever the server cannot be started, workers start fresh as before. ``LWDOCK_FORK_SERVER=0``
turns it off.

:func:`spawn` returns a :class:`WorkerProcess`: the part of ``subprocess.Popen`` that
``ModelWorker`` uses (pid, pipes, ``poll``/``wait``, ``kill_tree``), backed by the worker's
status socket, whose peer is PID 1 of the worker's namespace.
"""

from __future__ import annotations

import array
import atexit
import json
import logging
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import load_settings
from . import _bwrap, _linux, envs
from ._spawn import fresh_uid, spawn as spawn_process, worker_env

log = logging.getLogger("lwdock")

# (requirement that asks for it, top-level names that must come from lwdock's own environment,
# modules to import), in order; the first group the environment shadows ends the list. numpy
# always (0.5 s); scikit-learn (1-3 s, with scipy) only for environments that require it, so a
# one-off check of a numpy-only or torch learnware does not wait for it.
PRELOAD = [
    (None, ["numpy"], ["numpy"]),
    ("scikit-learn", ["numpy", "scipy", "sklearn", "joblib", "threadpoolctl"],
     ["sklearn.base", "sklearn.utils", "sklearn.linear_model", "sklearn.tree", "sklearn.ensemble",
      "sklearn.neighbors", "sklearn.svm", "sklearn.preprocessing", "sklearn.pipeline", "sklearn.naive_bayes",
      "joblib"]),
]
MAX_SERVERS = 8  # per lwdock process (about 100 MB each with scikit-learn); more envs start workers fresh
START_TIMEOUT = 120.0  # the server's own imports
SETUP_TIMEOUT = 60.0  # a worker's namespaces and mounts
_CREDS = struct.Struct("iII")


class ForkServerError(Exception):
    """The fork server cannot start this worker: the caller starts a fresh one instead."""


class WorkerProcess:
    """A forked worker, as far as ``ModelWorker`` needs a process: pid, pipes, exit status, kill."""

    def __init__(self, pid: int, stdin: int, stdout: int, status: socket.socket) -> None:
        self.pid = pid  # PID 1 of the worker's namespace, as the host sees it
        self.stdin = open(stdin, "wb", buffering=0)  # noqa: SIM115 - closed by ModelWorker
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.returncode: int | None = None
        self._status = status
        self._pidfd: int | None = os.pidfd_open(pid)
        if self._read_status(0) is not None:  # it died already: the pidfd may name another process
            self._close_pidfd()

    def _read_status(self, timeout: float | None) -> int | None:
        """Read status messages for up to ``timeout`` s; the exit code once the worker is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._status], [], [], left)[0]:
                return None
            msg = self._status.recv(4096)
            if not msg:  # PID 1 is gone without a word: it was killed
                self.returncode = -signal.SIGKILL
            elif msg.startswith(b"exit "):
                self.returncode = int(msg[5:])
        self._status.close()
        if self._pidfd is not None:  # PID 1 reports, then exits: wait until it is gone, as Popen.wait does
            select.select([self._pidfd], [], [], 5.0)
        self._close_pidfd()
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode if self.returncode is not None else self._read_status(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self.poll() if self.returncode is not None else self._read_status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("lwdock worker", timeout or 0)
        return code

    def kill_tree(self) -> None:
        """SIGKILL PID 1 of the worker's namespace: the kernel then kills every process in it."""
        if self._pidfd is not None and self.poll() is None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def _env_site(python: str) -> str | None:
    """The venv's own site-packages (None for lwdock's own interpreter, whose packages are trusted)."""
    venv = Path(python).parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        return None
    found = sorted(str(p) for p in venv.glob("lib/python*/site-packages"))
    trusted = {os.path.realpath(d) for d in envs._parent_site_dirs()}
    return next((p for p in found if os.path.realpath(p) not in trusted), None)


def _requirement_names(python: str) -> set[str]:
    """Names of the requirements the environment of ``python`` was built for (none for lwdock's own)."""
    try:
        meta = json.loads((Path(python).parent.parent / envs.MARKER).read_text())
    except (OSError, ValueError):
        return set()
    reqs = meta.get("requirements", []) if isinstance(meta, dict) else []
    return {m.group(0).lower() for r in reqs if isinstance(r, str) and (m := re.match(r"[A-Za-z0-9._-]+", r))}


def _preload_for(python: str) -> list[list[list[str]]]:
    names = _requirement_names(python)
    return [[needs, modules] for want, needs, modules in PRELOAD if want is None or want in names]


class ForkServer:
    """The fork server of one interpreter (a learnware environment), started on first use."""

    def __init__(self, tool: Any, python: str, runner: str) -> None:
        self.python = python
        self.env_site = _env_site(python)
        self._lock = threading.Lock()
        ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = _bwrap.zygote_command(tool.paths, python=python, runner=runner, ctl_fd=theirs.fileno())
        self._stderr = os.memfd_create("lwdock-fork-server-stderr")
        try:
            self.proc = spawn_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                      pass_fds=(theirs.fileno(),), env=worker_env("/tmp", "/usr/bin:/bin"),
                                      start_new_session=True)
        finally:
            theirs.close()
        self._ctl = ctl
        config = {"plan": _bwrap.worker_plan(python), "trusted_site": envs._parent_site_dirs(),
                  "env_site": self.env_site, "lwdock_dir": str(Path(__file__).resolve().parent.parent),
                  "preload": _preload_for(python)}
        try:
            ctl.settimeout(START_TIMEOUT)
            ctl.send(json.dumps(config).encode())
            ready = json.loads(ctl.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as exc:
            self.close()
            raise ForkServerError(f"fork server did not start ({exc}): {self.stderr_tail()}") from None
        if not ready.get("ready"):
            self.close()
            raise ForkServerError(f"fork server did not start: {self.stderr_tail()}")
        self.preloaded: list[str] = ready.get("preloaded", [])
        self.start_s = float(ready.get("seconds", 0.0))
        ctl.settimeout(SETUP_TIMEOUT)

    def stderr_tail(self) -> str:
        try:
            os.lseek(self._stderr, max(0, os.fstat(self._stderr).st_size - 2000), os.SEEK_SET)
            text = os.read(self._stderr, 2000).decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else "no message"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, package_root: Path, job: dict[str, Any], stdout_fd: int, stderr_fd: int) -> WorkerProcess:
        """Fork a worker for the learnware at ``package_root`` and hand it ``job``; raises ForkServerError."""
        try:
            tree = _linux.read_only_tree(str(package_root.resolve()))
        except OSError as exc:
            raise ForkServerError(f"cannot hand the learnware over as a mount: {exc}") from None
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        status.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        try:
            with self._lock:
                fds = [stdin_r, stdout_w, stdout_fd, stderr_fd, theirs.fileno(), tree]
                self._ctl.sendmsg([b"fork"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
                reply = self._ctl.recv(256)
            if not reply.startswith(b"ok"):
                raise ForkServerError(f"fork server refused: {reply.decode(errors='replace') or 'it is gone'}")
            data = json.dumps(job).encode()
            os.write(stdin_w, b"%d\n" % len(data))
            view = memoryview(data)
            while view:
                view = view[os.write(stdin_w, view) :]
            pid = _hello(status)
        except (OSError, ForkServerError) as exc:
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            status.close()
            raise exc if isinstance(exc, ForkServerError) else ForkServerError(str(exc)) from None
        finally:
            for fd in (stdin_r, stdout_w, tree):
                os.close(fd)
            theirs.close()
        return WorkerProcess(pid, stdin_w, stdout_r, status)

    def close(self) -> None:
        """Stop the server (and so every worker it forked: they live in its PID namespace)."""
        self._ctl.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self._stderr)


def _hello(status: socket.socket) -> int:
    """The host PID of the worker's PID 1, from the credentials the kernel attaches to its hello."""
    if not select.select([status], [], [], SETUP_TIMEOUT)[0]:
        raise ForkServerError("the forked worker did not set up its sandbox in time")
    msg, anc, _flags, _addr = status.recvmsg(4096, socket.CMSG_SPACE(_CREDS.size))
    if msg != b"hello":
        raise ForkServerError(msg.decode(errors="replace") or "the forked worker died during set-up")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return _CREDS.unpack(data[: _CREDS.size])[0]
    raise ForkServerError("no credentials on the worker's hello")


# -- one server per interpreter, for the life of this process ----------------------------------

_servers: dict[str, ForkServer] = {}
_broken: dict[str, str] = {}
_lock = threading.Lock()


def usable(tool: Any, python: str) -> bool:
    """Can a worker of ``python`` come from a fork server here? (Else it starts fresh.)"""
    return (tool is not None and tool.style == "nested" and os.geteuid() == 0 and load_settings().fork_server
            and os.path.realpath(python) == os.path.realpath(sys.executable) and python not in _broken)


def server_for(tool: Any, python: str, runner: str) -> ForkServer | None:
    """The running fork server of ``python``, started now if needed; None when it cannot be."""
    with _lock:
        server = _servers.get(python)
        if server is not None and server.alive:
            return server
        if python in _broken:
            return None
        if sum(s.alive for s in _servers.values()) >= MAX_SERVERS:
            return None  # never stop a server to make room: its running workers would die with it
        try:
            server = ForkServer(tool, python, runner)
        except (OSError, ForkServerError) as exc:
            _broken[python] = str(exc)
            log.info("workers start without a fork server: %s", exc)
            return None
        _servers[python] = server
        return server


def spawn(tool: Any, python: str, runner: str, *, package_root: Path, job: dict[str, Any], limits: Any,
          stdout_fd: int, stderr_fd: int) -> WorkerProcess | None:
    """A worker forked from ``python``'s fork server, confined as ``job`` says; None: start a fresh one."""
    _bwrap.guard_package(python, package_root)
    job = {**job, "root": _bwrap.PACKAGE_DEST, "workdir": _bwrap.SCRATCH, "uid": fresh_uid(),
           "scratch_mb": int(limits.scratch_mb), "shm_mb": _bwrap.SHM_MB, "env_site": None,
           "env": worker_env(_bwrap.SCRATCH, "/usr/bin:/bin")}
    for attempt in (1, 2):
        server = server_for(tool, python, runner)
        if server is None:
            return None
        try:
            return server.spawn(package_root, {**job, "env_site": server.env_site}, stdout_fd, stderr_fd)
        except ForkServerError as exc:
            if attempt == 1 and _died(server):  # killed or crashed: start a new one, once
                log.info("fork server of %s is gone (%s); starting a new one", python, exc)
                continue
            with _lock:
                _broken[python] = str(exc)
            log.info("workers start without a fork server: %s", exc)
            return None
    return None


def _died(server: ForkServer) -> bool:
    """Has ``server`` exited (waiting a moment for a killed one)? If so, forget it."""
    try:
        server.proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return False
    with _lock:
        if _servers.get(server.python) is server:
            del _servers[server.python]
    try:
        server.close()
    except OSError:
        pass
    return True


def server_pids() -> list[int]:
    """Host PIDs of the running fork servers' outer bwrap processes (for tests and ``doctor``)."""
    with _lock:
        return [s.proc.pid for s in _servers.values() if s.alive]


def status() -> dict[str, Any]:
    """What the fork servers of this process did (for benchmarks and ``--debug``)."""
    return {"servers": {p: {"preloaded": s.preloaded, "start_s": s.start_s, "alive": s.alive}
                        for p, s in _servers.items()}, "unavailable": dict(_broken)}


@atexit.register
def shutdown() -> None:
    """Stop every fork server (their workers are closed first: ``lwdock.check.runner`` registers later)."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        try:
            server.close()
        except OSError:
            pass
