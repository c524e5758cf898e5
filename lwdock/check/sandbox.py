"""What confines a learnware model: resource limits, network, and an audit hook.

Two halves. The client half (``network_prefix``, ``enforcement``) runs in the lwdock
process and decides how the worker is started. The worker half
(``apply_limits``, ``install_audit_hook``) runs inside the worker subprocess,
*before* any learnware code is imported. This module uses only the standard
library so the worker can import it in any env.

Enforced by the kernel: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (largest
file written, stdout log included), RLIMIT_CORE=0, a fresh network namespace
(no interface but a down loopback) when ``unshare --net`` works here, its own
session/process group, a private working directory, and a minimal environment
(no inherited secrets). Best effort, in-process: an audit hook that refuses
sockets, subprocesses and file writes or deletions outside the working
directory. Native code (ctypes, C extensions) can bypass the hook; docs/sandbox.md
says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache

# -- client half ---------------------------------------------------------------


@lru_cache(maxsize=1)
def network_prefix() -> tuple[str, ...]:
    """Command prefix that starts the worker without network, or () if not possible.

    ``--map-root-user`` puts the worker in a new user namespace too, so even a
    worker started by root cannot raise its own hard resource limits.
    """
    if not sys.platform.startswith("linux"):
        return ()
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    for prefix in ((exe, "--net", "--map-root-user"), (exe, "--net")):
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return prefix
    return ()


def enforcement() -> dict[str, str]:
    """What the sandbox enforces on this machine, for reports and ``docs``."""
    net = network_prefix()
    return {
        "memory": "RLIMIT_AS (kernel)",
        "cpu_time": "RLIMIT_CPU (kernel)",
        "file_size": "RLIMIT_FSIZE (kernel)",
        "network": ("new network namespace (" + " ".join(["unshare", *net[1:]]) + ")")
        if net else "NOT enforced by the kernel here (unshare unavailable); audit hook only",
        "file_writes": "audit hook (best effort; native code can bypass)",
        "subprocesses": "audit hook (best effort; native code can bypass)",
        "timeouts": "per call, enforced by the parent (SIGKILL of the worker's process group)",
    }


# -- worker half -----------------------------------------------------------------


def apply_limits(memory_mb: int | None, cpu_seconds: int | None, file_mb: int | None) -> None:
    """Set the worker's own limits, soft == hard so the model cannot raise them."""
    import resource

    def _set(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    _set(resource.RLIMIT_CORE, 0)
    if memory_mb:
        _set(resource.RLIMIT_AS, int(memory_mb) * 2**20)
    if cpu_seconds:
        # soft limit sends SIGXCPU (fatal); the hard one, a moment later, SIGKILL
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        want = (int(cpu_seconds), int(cpu_seconds) + 5)
        if hard != resource.RLIM_INFINITY:
            want = (min(want[0], hard), min(want[1], hard))
        resource.setrlimit(resource.RLIMIT_CPU, want)
    if file_mb:
        _set(resource.RLIMIT_FSIZE, int(file_mb) * 2**20)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {  # event -> indexes of path arguments that must stay inside
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "os.chdir": (),
}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "pty.spawn", "os.startfile"}
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
               "socket.gethostbyname", "socket.gethostbyaddr"}


def install_audit_hook(workdir: str) -> None:
    """Refuse (PermissionError) writes outside ``workdir``, network and subprocesses.

    Reads are allowed everywhere: a model needs its package files and libraries.
    """
    import socket

    root = os.path.realpath(workdir)
    allowed_exact = {os.devnull}

    def inside(path: object) -> bool:
        if isinstance(path, int):  # an fd that is already open
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return False
        full = os.path.realpath(os.fspath(path))
        return full == root or full.startswith(root + os.sep) or full in allowed_exact

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
            writing = writing or (isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the worker directory is not allowed")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the worker directory is not allowed")
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed in a learnware worker")
        elif event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            if family != socket.AF_UNIX:
                raise PermissionError("sandbox: network sockets are not allowed in a learnware worker")
        elif event in _NET_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed in a learnware worker")

    sys.addaudithook(hook)
