"""The bubblewrap command line that confines one model worker (see docs/sandbox.md).

Two shapes, chosen by :func:`lwdock.check.sandbox.probe`:

* ``userns`` (lwdock runs as an ordinary user): one unprivileged ``bwrap``
  creates every namespace, user namespace included, and maps the caller to uid
  65534 inside.
* ``nested`` (lwdock runs as root): a privileged ``bwrap`` builds the mount,
  PID, network, IPC and UTS namespaces; ``setpriv`` then drops to a fresh
  unprivileged uid (no capabilities, no groups); a second, unprivileged
  ``bwrap`` adds the user namespace, with nested user namespaces disabled.
  Root is exempt from RLIMIT_NPROC and a user namespace made by root maps to
  root outside, so without the drop neither the process limit nor "an
  unprivileged uid" would hold.

Either way ``prlimit`` sets every resource limit (soft = hard) before the
interpreter starts, so no code of the learnware or of its requirements (a
``.pth`` file runs at start-up) ever runs unlimited.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import SandboxUnavailableError

INNER_ID = 65534  # uid and gid inside the sandbox ("nobody")
PACKAGE_DEST = "/learnware"  # the verified copy, read-only
JOB_DEST = "/lwdock/job.json"
SCRATCH = "/tmp"  # the one writable place: a size-capped tmpfs (also HOME and the cwd)
SHM_MB = 64
ZYGOTE_ROOT = "/newroot"  # empty in the fork server's view; each forked worker builds its root there
# what a fork server's children need to confine themselves (dropped by each before learnware code runs)
ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_NET_ADMIN")
_TOP = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # symlinks into /usr on merged-/usr systems
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "fonts")
_NAMESPACES = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")


class _Plan:
    """Mount operations in order, with every parent directory created 0755 first.

    ``ops`` records them as data (``("dir", d)``, ``("ro-bind", src, dest, try_)``,
    ``("symlink", target, dest)``): the fork server's children replay the same plan
    (``lwdock.check.zygote``), so a forked worker sees exactly what a bwrap worker sees.
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self.ops: list[tuple] = []
        self._dirs: set[str] = {"/"}

    def parents(self, dest: str) -> None:
        parts = Path(dest).parts[1:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                self.args += ["--perms", "0755", "--dir", d]
                self.ops.append(("dir", d))

    def ro_bind(self, src: str, dest: str | None = None, *, try_: bool = False) -> None:
        dest = dest or src
        self.parents(dest)
        self.args += ["--ro-bind-try" if try_ else "--ro-bind", src, dest]
        self.ops.append(("ro-bind", src, dest, try_))
        self._dirs.add(dest)

    def symlink(self, target: str, dest: str) -> None:
        self.parents(dest)
        self.args += ["--symlink", target, dest]
        self.ops.append(("symlink", target, dest))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def python_paths(python: str) -> list[str]:
    """Directories the interpreter ``python`` needs: its venv, its base installation, lwdock itself."""
    from . import envs

    exe = Path(python)
    out: list[Path] = []
    venv = exe.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        out.append(venv)
        for line in (venv / "pyvenv.cfg").read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                out.extend(_prefix_dirs(Path(value.strip()).parent))
    out.extend(_prefix_dirs(Path(os.path.realpath(exe)).parent.parent))
    out.extend(_prefix_dirs(Path(sys.base_prefix)))
    out.extend(Path(d) for d in envs._parent_site_dirs())  # the chained env adds lwdock's own site-packages
    out.append(Path(__file__).resolve().parent.parent)  # the lwdock package (the runner lives in it)
    real = sorted({os.path.realpath(p) for p in out if p.exists()}, key=len)
    kept: list[str] = []
    for p in real:  # parents first; a directory inside one already bound is not bound again
        if not _under(p, ["/usr", *kept]):
            kept.append(p)
    return kept


def _prefix_dirs(prefix: Path) -> list[Path]:
    # only what an interpreter needs, never the whole prefix: a prefix may be a home directory
    return [prefix / d for d in ("bin", "lib", "lib64") if (prefix / d).is_dir()]


def _guard(sources: list[str], private: list[Path]) -> None:
    for src in sources:
        for p in private:
            if _under(os.path.realpath(p), [src]):
                raise SandboxUnavailableError(
                    f"cannot isolate learnware code: {src} would have to be visible to it, and it contains {p}",
                    hint="keep the dock outside Python's installation and outside lwdock's own environment")


def _system(plan: _Plan) -> None:
    plan.ro_bind("/usr")
    for top in _TOP:
        if os.path.islink(top):
            plan.symlink(os.readlink(top), top)
        elif os.path.isdir(top):
            plan.ro_bind(top)
    for name in _ETC:
        plan.ro_bind(f"/etc/{name}", try_=True)
    plan.ro_bind("/sys/devices/system/cpu", try_=True)  # CPU topology, for BLAS and torch thread pools


def probe_mounts() -> list[str]:
    """The system part only: enough to run /usr/bin/true."""
    plan = _Plan()
    _system(plan)
    plan.args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", SCRATCH, "--remount-ro", "/"]
    return plan.args


def mounts(*, python: str, package_root: Path, job_file: Path, scratch_mb: int) -> list[str]:
    """bwrap options for the filesystem a worker sees."""
    plan = _Plan()
    _system(plan)
    plan.args += ["--proc", "/proc", "--dev", "/dev",
                  "--size", str(SHM_MB << 20), "--perms", "1777", "--tmpfs", "/dev/shm",
                  "--size", str(int(scratch_mb) << 20), "--perms", "1777", "--tmpfs", SCRATCH]
    sources = python_paths(python)
    _guard(sources, [package_root.parent, job_file.parent])
    for src in sources:  # after the /tmp tmpfs: a source may live under /tmp
        plan.ro_bind(src)
    plan.ro_bind(str(package_root.resolve()), PACKAGE_DEST)
    plan.ro_bind(str(job_file), JOB_DEST)
    plan.args += ["--remount-ro", "/", "--chdir", SCRATCH]
    return plan.args


def worker_plan(python: str) -> list[tuple]:
    """The read-only part of a worker's filesystem (system and interpreter) as replayable operations."""
    plan = _Plan()
    _system(plan)
    for src in python_paths(python):
        plan.ro_bind(src)
    return plan.ops


def guard_package(python: str, package_root: Path) -> None:
    """Refuse a learnware that lives inside a directory every worker of ``python`` sees."""
    _guard(python_paths(python), [package_root.parent])


def zygote_command(tools: dict[str, str], *, python: str, runner: str, ctl_fd: int) -> list[str]:
    """The fork server of ``python`` (root only, see ``lwdock.check.forkserver``).

    The same namespaces and read-only system and interpreter as a worker, but no learnware,
    no job file and no dock. It keeps the capabilities its children need to build their own
    sandbox (namespaces and mounts, a fresh uid, the loopback device) and runs only lwdock's
    own code: ``-S`` keeps the environment's ``.pth`` files from running in it.
    """
    plan = _Plan()
    _system(plan)
    plan.args += ["--proc", "/proc", "--dev", "/dev", "--size", str(1 << 20), "--tmpfs", SCRATCH]
    for src in python_paths(python):  # after the /tmp tmpfs: a source may live under /tmp
        plan.ro_bind(src)
    plan.args += ["--perms", "0755", "--dir", ZYGOTE_ROOT, "--remount-ro", "/", "--chdir", "/"]
    caps = [arg for cap in ZYGOTE_CAPS for arg in ("--cap-add", cap)]
    return [tools["bwrap"], *_NAMESPACES, "--die-with-parent", "--new-session", "--hostname", "lwdock",
            "--cap-drop", "ALL", *caps, *plan.args, "--", python, "-I", "-S", "-B", runner, "--zygote", str(ctl_fd)]


def prlimit(exe: str, rlimits: dict[str, int]) -> list[str]:
    """``prlimit`` setting every limit with soft = hard, then running what follows."""
    return [exe, *(f"--{name.lower()}={v}:{v}" for name, v in rlimits.items()), "--"]


def command(style: str, tools: dict[str, str], *, mount_args: list[str], uid: int | None,
            rlimits: dict[str, int]) -> list[str]:
    """The argv prefix that runs a program confined: append the program and its arguments."""
    limits = prlimit(tools["prlimit"], rlimits)
    common = [*_NAMESPACES, "--die-with-parent", "--new-session", "--hostname", "lwdock"]
    userns = ["--unshare-user", "--disable-userns", "--uid", str(INNER_ID), "--gid", str(INNER_ID), "--cap-drop", "ALL"]
    if style == "userns":
        return [tools["bwrap"], *userns, *common, *mount_args, "--", *limits]
    if uid is None:
        raise ValueError("the nested sandbox needs a uid to drop to")
    outer = [tools["bwrap"], *common, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
             *mount_args, "--"]
    drop = [tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--"]
    inner = [tools["bwrap"], *userns, "--dev-bind", "/", "/", "--chdir", SCRATCH, "--die-with-parent", "--"]
    return [*outer, *drop, *inner, *limits]
