"""The fork server ("zygote") and the sandbox its workers build for themselves. Runs INSIDE bubblewrap.

lwdock starts one fork server per learnware environment (``lwdock.check.forkserver``):
``python -I -S -B lwdock/runner.py --zygote FD`` under a bwrap that gives it the same
read-only system and interpreter as a worker, its own PID, network, IPC and UTS namespaces,
and no learnware, job file or dock. ``-S`` keeps the environment's ``.pth`` files (code a
learnware's requirements chose) out of it: it imports only the standard library and
modules found in lwdock's own site-packages (numpy, scikit-learn), and only those the
environment does not shadow. It never sees a job either: for each worker it gets only file
descriptors, forks, and forgets them.

Each forked worker confines itself before anything of a learnware is read:

1. **setup** (the forked child): reads its job from its own pipe; new mount, PID, network,
   IPC, UTS and cgroup namespaces; an empty tmpfs root with the read-only system and
   interpreter (the same plan as a bwrap worker, ``lwdock.check._bwrap.worker_plan``), its
   learnware copy at ``/learnware`` (a detached read-only mount lwdock made with
   ``open_tree``, attached with ``move_mount``), a private size-capped ``/tmp`` and
   ``/dev/shm``, the same few devices; then it forks
2. **init**, PID 1 of the new namespace: mounts its ``/proc``, pivots into the new root,
   forks the runner, drops every capability, and reaps; it reports the runner's exit status
   (as bwrap does: the code, or 128 + signal) to lwdock and exits with it, which ends the
   namespace and every process in it;
3. **runner**, PID 2: sets every rlimit (soft = hard), drops to its fresh uid (no groups, empty
   bounding set), enters a user namespace as uid 65534 with nested user namespaces disabled
   (``max_user_namespaces`` = 1 in an intermediate one, as ``bwrap --disable-userns`` does),
   drops every capability, sets ``no_new_privs``, keeps only its protocol pipes and logs, then
   adds the environment's site-packages (its ``.pth`` files run now, confined) and serves
   as :func:`lwdock.check.worker.run_job`.
"""

from __future__ import annotations

import array
import importlib
import json
import os
import select
import signal
import socket
import sys
import sysconfig
import time
from typing import Any, NoReturn

from . import _linux as L
from .worker import apply_limits, run_job, take_protocol_fds

ROOT = "/newroot"  # lwdock.check._bwrap.ZYGOTE_ROOT
N_FDS = 6  # stdin, stdout (the protocol), stdout.log, stderr.log, status socket, learnware mount
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PROC_COVERS = ("sysrq-trigger", "irq", "bus")  # and "sys", once the runner has set its user namespaces up
NAMESPACES = L.CLONE_NEWNS | L.CLONE_NEWPID | L.CLONE_NEWNET | L.CLONE_NEWIPC | L.CLONE_NEWUTS
OVERFLOW_ID = 65534
MAX_JOB = 1 << 24
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


# -- the server -------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    ctl = socket.socket(fileno=int(argv[argv.index("--zygote") + 1]))
    config = json.loads(ctl.recv(1 << 20) or b"null")
    if not isinstance(config, dict):
        return 2
    t0 = time.perf_counter()
    preloaded = _preload(config)
    ctl.send(json.dumps({"ready": True, "preloaded": preloaded, "seconds": time.perf_counter() - t0}).encode())
    while True:
        r, _, _ = select.select([ctl], [], [], 1.0)
        _reap()
        if not r:
            continue
        try:
            msg, fds = _recv_fds(ctl)
        except OSError:
            return 0
        if not msg:  # lwdock closed the socket
            return 0
        if len(fds) != N_FDS:
            _close(fds)
            ctl.send(b"error: expected %d descriptors" % N_FDS)
            continue
        pid = os.fork()
        if pid == 0:
            _setup(config, fds, ctl.fileno())
        _close(fds)
        ctl.send(b"ok %d" % pid)


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(64, socket.CMSG_SPACE(N_FDS * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _shadowed(env_site: str | None) -> set[str] | None:
    """Top-level names the environment's own site-packages provides (None: it runs .pth files)."""
    names: set[str] = set()
    for entry in os.listdir(env_site) if env_site and os.path.isdir(env_site) else ():
        if entry.endswith(".pth"):
            if entry != "_lwdock_parent.pth":
                return None  # start-up code of the environment's choosing: preload nothing
            continue
        names.add(entry.split(".", 1)[0].split("-", 1)[0].lower())
    return names


def _preload(config: dict) -> list[str]:
    """Import what every worker of this environment would import, from lwdock's own site-packages only."""
    import site

    for d in config.get("trusted_site", []):
        site.addsitedir(d)  # lwdock's own environment: its .pth files are lwdock's
    shadowed = _shadowed(config.get("env_site"))
    done: list[str] = []
    for group in config.get("preload", []):  # [[top-level names it needs], [modules]]
        needs, modules = group
        if shadowed is None or shadowed & {n.lower() for n in needs}:
            break
        try:
            for m in modules:
                importlib.import_module(m)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            break
        done += modules
    trusted = tuple(os.path.realpath(p) + os.sep for p in (*config.get("trusted_site", []), config["lwdock_dir"],
                                                          sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")))
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if path and not os.path.realpath(path).startswith(trusted):
            raise SystemExit(f"fork server: {name} was imported from {path}, outside lwdock's own environment")
    return done


# -- 1. setup, in the forked child ------------------------------------------------------------


def _setup(config: dict, fds: list[int], ctl_fd: int) -> NoReturn:
    stdin_r, stdout_w, log_fd, err_fd, status_fd, tree_fd = fds
    status = socket.socket(fileno=status_fd)
    try:
        os.close(ctl_fd)
        os.dup2(err_fd, 2)
        _close_all_but({stdin_r, stdout_w, log_fd, 2, status_fd, tree_fd})
        job = _read_job(stdin_r)
        os.setsid()
        L.unshare(NAMESPACES)
        try:
            L.unshare(L.CLONE_NEWCGROUP)
        except OSError:
            pass  # no cgroup namespaces on this kernel (bwrap's --unshare-cgroup-try)
        L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
        socket.sethostname("lwdock")
        _loopback_up()
        _build_root(config["plan"], job, tree_fd)
        os.close(tree_fd)
        if os.fork() == 0:
            _init(job, [stdin_r, stdout_w, log_fd], status)
    except BaseException as exc:  # noqa: BLE001 - reported to lwdock, which falls back to a fresh worker
        _report(status, f"error {type(exc).__name__}: {exc}")
        os._exit(1)
    os._exit(0)


def _close_all_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _read_job(fd: int) -> dict:
    """``<length>\\n<json>`` from the worker's own stdin pipe (lwdock writes it right after the fork)."""
    head = b""
    while not head.endswith(b"\n"):
        b = os.read(fd, 1)
        if not b or len(head) > 20:
            raise OSError("no job on the worker's pipe")
        head += b
    n = int(head)
    if not 0 < n <= MAX_JOB:
        raise OSError(f"job of {n} bytes")
    data = bytearray()
    while len(data) < n:
        part = os.read(fd, n - len(data))
        if not part:
            raise OSError("job cut short")
        data += part
    return json.loads(data)


def _report(status: socket.socket, text: str) -> None:
    try:
        status.send(text.encode()[:2000])
    except OSError:
        pass


def _loopback_up() -> None:
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def _build_root(plan: list[list[Any]], job: dict, tree_fd: int) -> None:
    """The worker's filesystem under ROOT, as bwrap builds it (docs/sandbox.md, "What a worker sees")."""
    L.mount("tmpfs", ROOT, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "mode=0755,size=1m")
    os.mkdir(ROOT + "/tmp")  # first: an interpreter may live under /tmp, and its bind goes on top
    L.mount("tmpfs", ROOT + "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"mode=1777,size={job['scratch_mb']}m")
    for op in plan:
        kind, rest = op[0], op[1:]
        if kind == "dir":
            os.makedirs(ROOT + rest[0], mode=0o755, exist_ok=True)
        elif kind == "symlink":
            os.symlink(rest[0], ROOT + rest[1])
        elif kind == "ro-bind":
            src, dest, try_ = rest
            if try_ and not os.path.lexists(src):
                continue
            _mountpoint(ROOT + dest, os.path.isdir(src))
            L.bind_read_only(src, ROOT + dest)
    dev = ROOT + "/dev"
    os.makedirs(dev, exist_ok=True)
    L.mount("tmpfs", dev, "tmpfs", L.MS_NOSUID, "mode=0755")
    for name in DEVICES:
        _mountpoint(f"{dev}/{name}", False)
        L.mount(f"/dev/{name}", f"{dev}/{name}", None, L.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    L.mount("devpts", f"{dev}/pts", "devpts", L.MS_NOSUID | L.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    os.mkdir(f"{dev}/shm")
    L.mount("tmpfs", f"{dev}/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"mode=1777,size={job['shm_mb']}m")
    os.makedirs(ROOT + "/proc", exist_ok=True)
    _mountpoint(ROOT + job["root"], True)
    L.move_mount(tree_fd, ROOT + job["root"])


def _mountpoint(path: str, is_dir: bool) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if is_dir:
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


# -- 2. init, PID 1 of the worker's namespace ------------------------------------------------------


def _init(job: dict, protocol_fds: list[int], status: socket.socket) -> NoReturn:
    try:
        os.setsid()  # its own process group: lwdock kills the group
        L.mount("proc", ROOT + "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
        for name in PROC_COVERS:
            _cover(f"{ROOT}/proc/{name}")
        L.pivot_root(ROOT, ROOT + "/tmp")  # the old root goes under /tmp for a moment, then away
        os.chdir("/")
        L.umount2("/tmp", L.MNT_DETACH)
        L.mount(None, "/", None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)
        os.chdir("/tmp")
        to_runner, from_init = socket.socketpair()
        runner = os.fork()
        if runner == 0:
            to_runner.close()
            _runner(job, protocol_fds, from_init)
        from_init.close()
        _close(protocol_fds)  # the runner's end only: EOF reaches lwdock when the runner dies
        if to_runner.recv(1) == b"u":  # the runner's user namespaces exist: cover /proc/sys now
            _cover("/proc/sys")
            to_runner.send(b"c")
        to_runner.close()
        L.drop_all_capabilities()
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
        L.prctl(L.PR_SET_DUMPABLE, 0)
        _report(status, "hello")  # lwdock reads our host PID from the message's credentials
    except BaseException as exc:  # noqa: BLE001
        _report(status, f"error {type(exc).__name__}: {exc}")
        os._exit(1)
    while True:
        pid, st = os.waitpid(-1, 0)
        if pid == runner:
            code = os.waitstatus_to_exitcode(st)
            code = 128 - code if code < 0 else code  # as bwrap reports it
            _report(status, f"exit {code}")
            os._exit(code)


def _cover(path: str) -> None:
    if os.path.exists(path):
        L.mount(path, path, None, L.MS_BIND | L.MS_REC)
        L.mount(None, path, None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)


# -- 3. the runner ------------------------------------------------------------------------------


def _runner(job: dict, protocol_fds: list[int], init: socket.socket) -> NoReturn:
    try:
        L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
        apply_limits(job["rlimits"])  # soft = hard, before anything of the learnware runs
        _become(int(job["uid"]))
        init.send(b"u")
        if init.recv(1) != b"c":
            raise OSError("init did not finish the sandbox")
        init.close()
        stdin_r, stdout_w, log_fd = protocol_fds
        os.dup2(stdin_r, 0)
        os.dup2(stdout_w, 1)
        _close([stdin_r, stdout_w])
        rfile, wfile = take_protocol_fds(log_fd)
    except BaseException as exc:  # noqa: BLE001 - lwdock sees the worker die; the reason is in stderr.log
        print(f"lwdock worker set-up failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(3)
    os.environ.clear()
    os.environ.update(job["env"])
    _add_environment(job.get("env_site"))
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # forked workers would otherwise share the server's global RNG
    os._exit(run_job(job, rfile, wfile))


def _become(uid: int) -> None:
    """Drop to ``uid`` with no capability, then to uid 65534 in a user namespace that cannot nest."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # the effective and permitted capabilities go with uid 0
    L.prctl(L.PR_SET_DUMPABLE, 1)  # a non-dumpable process may not write its own uid_map
    _new_userns(0, uid)
    with open("/proc/sys/user/max_user_namespaces", "w") as fh:
        fh.write("1")  # counted in this namespace: the one below is the last
    _new_userns(OVERFLOW_ID, 0)
    L.drop_all_capabilities()
    L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)


def _new_userns(inside: int, outside: int) -> None:
    L.unshare(L.CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{inside} {outside} 1"), ("gid_map", f"{inside} {outside} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _add_environment(env_site: str | None) -> None:
    """The environment's own site-packages before lwdock's, with its ``.pth`` files: now, confined."""
    if not env_site or not os.path.isdir(env_site):
        return
    import site

    known = {os.path.normcase(os.path.abspath(p)) for p in sys.path}
    pos = next((i for i, p in enumerate(sys.path) if "site-packages" in p or "dist-packages" in p), len(sys.path))
    sys.path.insert(pos, env_site)
    known.add(os.path.normcase(os.path.abspath(env_site)))
    for name in sorted(n for n in os.listdir(env_site) if n.endswith(".pth")):
        site.addpackage(env_site, name, known)
