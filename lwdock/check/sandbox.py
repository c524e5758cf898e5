"""How learnware code is isolated, and the one place a model worker process is started.

Modes (``--sandbox``, ``LWDOCK_SANDBOX``; default ``kernel``):

* ``kernel``: the worker runs under bubblewrap (``lwdock.check._bwrap``) in new
  user, PID, network, IPC, UTS and cgroup namespaces, as an unprivileged uid
  with no capabilities. It sees the system and its own verified learnware copy
  read-only, a size-capped private ``/tmp`` as its only writable place, and
  nothing of the dock, the host's ``/tmp``, ``/run`` or home. Every process it
  starts dies with it. Resource limits (soft = hard) are set before the
  interpreter starts. Where this is not available, lwdock refuses to run
  learnware code (:class:`~lwdock.errors.SandboxUnavailableError`).
* ``weak``: resource limits only, for learnwares you trust on machines
  without user namespaces (macOS, locked-down containers). Warns on every
  worker start.

:func:`start_worker` is the single start-up path of a worker: a fresh interpreter under
bubblewrap, or (as root) a fork of its environment's fork server (``lwdock.check.forkserver``),
confined the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from ..errors import SandboxUnavailableError, UsageError
from . import _bwrap, forkserver
from ._spawn import fresh_uid, spawn, worker_env

log = logging.getLogger("lwdock")

KERNEL, WEAK = "kernel", "weak"
MODES = (KERNEL, WEAK)
HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) on a Linux kernel with user namespaces "
        "enabled; or pass --sandbox weak (LWDOCK_SANDBOX=weak) to run learnwares you trust with resource limits only")
# threads count too, and BLAS and torch start one per core: 256, or 4 per core on big machines
MAX_PROCESSES = max(256, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker (None: not limited)."""

    memory_mb: int | None = 4096  # RLIMIT_AS
    cpu_seconds: int | None = 3600  # RLIMIT_CPU: SIGKILL when used up
    file_mb: int | None = 1024  # RLIMIT_FSIZE: the largest file it may write, its logs included
    max_processes: int | None = MAX_PROCESSES  # RLIMIT_NPROC in its user namespace: processes and threads
    scratch_mb: int = 512  # size of its private /tmp (kernel mode)

    def rlimits(self, mode: str) -> dict[str, int]:
        """``{name: value}`` of the rlimits to set (prlimit option names, upper case)."""
        out = {"CORE": 0}
        if self.memory_mb:
            out["AS"] = int(self.memory_mb) << 20
        if self.cpu_seconds:
            out["CPU"] = int(self.cpu_seconds)
        if self.file_mb:
            out["FSIZE"] = int(self.file_mb) << 20
        # outside a user namespace RLIMIT_NPROC counts every process of the user: only in kernel mode
        if self.max_processes and mode == KERNEL:
            out["NPROC"] = int(self.max_processes)
        return out


@dataclass(frozen=True)
class Tool:
    """The isolation this machine offers: which command shape and which programs."""

    style: str  # "nested" (root) or "userns"
    paths: dict[str, str]
    version: str

    @property
    def limits_processes(self) -> bool:
        # root is exempt from RLIMIT_NPROC; the nested shape drops to another uid first
        return self.style == "nested" or os.geteuid() != 0


# -- mode -------------------------------------------------------------------------------

_cli_mode: str | None = None


def set_cli_mode(mode: str | None) -> None:
    """The ``--sandbox`` flag of this command (None: not given). Called by the CLI's root callback."""
    global _cli_mode
    if mode is not None:
        _check_mode(mode)
    _cli_mode = mode


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown sandbox mode {mode!r}", hint="use kernel (the default) or weak")
    return mode


def mode_for(explicit: str | None = None) -> str:
    """The mode to use: ``explicit``, then ``--sandbox``, then ``LWDOCK_SANDBOX``, then ``kernel``."""
    from ..config import load_settings

    return _check_mode(explicit or _cli_mode or load_settings().sandbox)


# -- detection ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def probe() -> Tool | str:
    """The working isolation tool here, or a one-line reason why there is none (cached per process)."""
    if not sys.platform.startswith("linux"):
        return f"kernel isolation needs Linux namespaces; this is {sys.platform}"
    paths = {name: shutil.which(name) for name in ("bwrap", "prlimit", "setpriv")}
    if paths["bwrap"] is None:
        return "bubblewrap (bwrap) is not installed"
    if paths["prlimit"] is None:
        return "prlimit (util-linux) is not installed"
    styles = ["nested", "userns"] if os.geteuid() == 0 and paths["setpriv"] else ["userns"]
    why = ""
    for style in styles:
        tool = Tool(style=style, paths={k: v for k, v in paths.items() if v}, version=_version(paths["bwrap"]))
        argv = _bwrap.command(style, tool.paths, mount_args=_bwrap.probe_mounts(), uid=fresh_uid(),
                              rlimits={"NPROC": 64, "CORE": 0})
        try:
            proc = subprocess.run([*argv, "/usr/bin/true"], capture_output=True, text=True, timeout=30,
                                  env={"PATH": "/usr/bin:/bin"})
        except (OSError, subprocess.SubprocessError) as exc:
            why = f"{style}: {exc}"
            continue
        if proc.returncode == 0:
            return tool
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1] if lines else f"bwrap exited with code {proc.returncode}"
    return f"bubblewrap cannot create the sandbox here ({why})"


def _version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "bubblewrap"


def require(mode: str) -> Tool | None:
    """The tool for ``mode`` (None in weak mode); refuses when kernel isolation is unavailable."""
    if mode == WEAK:
        return None
    found = probe()
    if isinstance(found, str):
        raise SandboxUnavailableError(f"refusing to run learnware code without kernel isolation: {found}", hint=HINT)
    return found


# -- report ---------------------------------------------------------------------------------


def describe(mode: str, tool: Tool | None, limits: Limits) -> dict[str, Any]:
    """What confines the model, for the check report's ``sandbox`` field (docs/sandbox.md has the detail)."""
    lim = {"memory": f"{limits.memory_mb} MiB address space (RLIMIT_AS)" if limits.memory_mb else "not limited",
           "cpu_time": f"{limits.cpu_seconds} s (RLIMIT_CPU, then SIGKILL)" if limits.cpu_seconds else "not limited",
           "file_size": f"{limits.file_mb} MiB per file (RLIMIT_FSIZE)" if limits.file_mb else "not limited",
           "timeouts": "per call, enforced by lwdock (SIGKILL)"}
    if tool is None:
        return {"mode": WEAK, **lim, "filesystem": "NOT isolated: the model can read and write what your user can",
                "network": "NOT isolated", "processes": "NOT limited; its own session only",
                "warning": "weak mode: for learnwares you trust only"}
    uid = ("a fresh unprivileged uid per worker (dropped from root)" if tool.style == "nested"
           else f"uid {_bwrap.INNER_ID} in a user namespace, mapped to your uid" if os.geteuid() != 0
           else f"uid {_bwrap.INNER_ID} in a user namespace, mapped to root (no setpriv to drop to another uid)")
    procs = (f"at most {limits.max_processes} processes and threads (RLIMIT_NPROC, per sandbox)"
             if limits.max_processes and tool.limits_processes else "NOT limited (root without setpriv)")
    return {"mode": KERNEL, "tool": tool.version, "style": tool.style, "user": uid, **lim, "processes": procs,
            "filesystem": f"system and its own verified copy read-only; a private {limits.scratch_mb} MiB /tmp; "
                          "nothing of the dock, the host's /tmp, /run or home",
            "network": "none (empty network namespace)",
            "namespaces": "user, pid, net, ipc, uts, cgroup; every process dies with the worker"}


# -- start-up -----------------------------------------------------------------------------------

_spawn = spawn  # a module global, so a benchmark can wrap it
_worker_env = worker_env


def start_worker(*, mode: str, tool: Tool | None, python: str, runner: str, package_root: Path, workdir: Path,
                 model: dict[str, Any], limits: Limits, stdout_fd: int, stdin: int, stdout: int,
                 stderr: IO[bytes]) -> subprocess.Popen | forkserver.WorkerProcess:
    """Start ``python runner --job ...`` confined as ``mode`` says, with its job file in ``workdir``.

    ``model`` holds ``module``, ``class_name`` and ``kwargs``. ``stdout_fd`` (an open
    log file) becomes the model's stdout; stdin/stdout are the protocol pipes. In kernel mode
    as root the worker is forked from its environment's fork server when one can run
    (``lwdock.check.forkserver``: same confinement, no interpreter start-up); it then has
    ``kill_tree()`` instead of a process group to kill.
    """
    kernel = tool is not None
    rlimits = limits.rlimits(mode)
    if kernel and forkserver.usable(tool, python):
        forked = forkserver.spawn(tool, python, runner, package_root=package_root, job={**model, "rlimits": rlimits},
                                  limits=limits, stdout_fd=stdout_fd, stderr_fd=stderr.fileno())
        if forked is not None:
            return forked
    job = {**model, "root": _bwrap.PACKAGE_DEST if kernel else str(package_root.resolve()),
           "workdir": _bwrap.SCRATCH if kernel else str(workdir / "work"), "rlimits": rlimits,
           "stdout_fd": stdout_fd, "watch_parent": not kernel}
    job_file = workdir / "job.json"
    job_file.write_text(json.dumps(job))
    env = _worker_env(job["workdir"], "/usr/bin:/bin" if kernel else os.environ.get("PATH", "/usr/bin:/bin"))
    if kernel:
        mount_args = _bwrap.mounts(python=python, package_root=package_root, job_file=job_file,
                                   scratch_mb=limits.scratch_mb)
        prefix = _bwrap.command(tool.style, tool.paths, mount_args=mount_args, uid=fresh_uid(), rlimits=rlimits)
        argv, job_arg, cwd = [*prefix, python], _bwrap.JOB_DEST, None
    else:
        (workdir / "work").mkdir()
        log.warning("--sandbox weak: learnware code runs with resource limits only; it can read and write "
                    "anything your user can and use the network. Use it only for learnwares you trust.")
        prlimit = shutil.which("prlimit") if sys.platform.startswith("linux") else None
        pre = _bwrap.prlimit(prlimit, rlimits) if prlimit else []  # else the worker sets them itself
        argv, job_arg, cwd = [*pre, python], str(job_file), str(workdir / "work")
    argv += ["-I", "-B", runner, "--job", job_arg]
    return _spawn(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env, pass_fds=(stdout_fd,),
                  start_new_session=True, bufsize=0)
