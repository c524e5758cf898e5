"""Cached, chained virtualenvs for learnware requirements.

An env is keyed by a hash of the normalised requirements, the Python version and
the dock's own environment. It lives in ``<dock>/envs/<key>/`` and is shared by
every learnware with the same requirements.

Fast build: a bare child venv (no pip inside), one ``.pth`` file that chains the
dock's own site-packages after the child's, then ``pip --python CHILD install``
of the extra requirements only. pip sees what the parent already provides and
installs nothing for it; anything it does install lands in the child and wins
over the parent's copy (the child's site-packages comes first on ``sys.path``).

Consistency: the build runs under a file lock per key, and the metadata file
``lwdock-env.json`` is written last, atomically. An env directory without it is
half-built: it is never used, and the next builder removes it first.

Builds run outside the sandbox, so they must never run code a learnware chose:
pip installs wheels only (``--only-binary=:all:``), because building an sdist
runs its ``setup.py``. Installing a wheel runs nothing; its code (``.pth``
files included) runs later, inside the sandboxed worker. An env built as root
is made readable by everyone, because the sandboxed worker runs as another uid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._atomic import write_atomic
from ..errors import EnvBuildError, UsageError

log = logging.getLogger("lwdock")

MARKER = "lwdock-env.json"
ENV_MANAGERS = ("venv", "none")
# The shim (lwdock/check/compat) provides `learnware` inside the worker; installing
# the real package would pull in torch 2.0 and friends, so these lines are dropped.
_PROVIDED = {"learnware"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalise_requirements(lines: list[str] | tuple[str, ...]) -> list[str]:
    """Strip comments and blanks, canonicalise names, drop duplicates, sort.

    Lines naming ``learnware`` are dropped (the shim provides it). Options such
    as ``-r``/``--index-url`` are refused: a package may not steer pip.
    """
    out: set[str] = set()
    for raw in lines:
        line = raw.strip()
        if line.startswith("#"):
            continue
        line = line.split(" #", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise EnvBuildError(
                f"requirement option {line.split()[0]!r} is not allowed",
                hint="list plain requirement specifiers, one per line",
            )
        _refuse_source_reference(line)
        m = _NAME.match(line)
        if m and _canonical(m.group(1)) in _PROVIDED:
            continue
        if m:
            line = _canonical(m.group(1)) + line[m.end() :]
        out.add(" ".join(line.split()))
    return sorted(out)


def _refuse_source_reference(line: str) -> None:
    """A direct reference must name a wheel: pip builds anything else, running its code here, unsandboxed."""
    name, at, url = line.partition("@")
    looks_like_path = "://" in line or line.startswith((".", "/", "~")) or "/" in name
    if not (at or looks_like_path):
        return
    target = (url if at else line).split(";", 1)[0].strip()
    if not (_NAME.match(name) and at and target.endswith(".whl") and "+" not in target.split("://", 1)[0]):
        raise EnvBuildError(
            f"requirement {line!r} is not a package name or a wheel",
            hint="source archives, folders and VCS links would run build code outside the sandbox; "
                 "name a package from the index or a .whl file")


def _parent_site_dirs() -> list[str]:
    dirs = [p for p in site.getsitepackages() if os.path.isdir(p)]
    return dirs or [sysconfig.get_path("purelib")]


def env_key(requirements: list[str], python: str | None = None) -> str:
    """Hash of the normalised requirements, the interpreter and the parent env."""
    payload = {
        "requirements": normalise_requirements(requirements),
        "python": python or f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}",
        "parent": _parent_site_dirs(),
        "layout": 1,
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@dataclass
class Env:
    """A ready environment: run ``python`` to get its interpreter."""

    key: str
    python: str
    path: Path | None
    manager: str
    requirements: list[str] = field(default_factory=list)
    built_s: float = 0.0  # seconds spent building (0.0 when cached)
    created: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        return d


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _pip_reason(text: str) -> str:
    """pip's own reason: its ERROR lines, else the last non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:") and not ln.startswith("ERROR: Ignored the following")]
    picked = errors[-2:] if errors else lines[-2:]
    return " | ".join(ln if len(ln) < 400 else ln[:400] + "..." for ln in picked) or "pip failed without a message"


class EnvManager:
    """Builds, finds, lists and prunes envs under ``envs_dir``.

    ``manager="venv"`` (default) gives each requirement set its own chained venv.
    ``manager="none"`` runs the model with the current interpreter and installs
    nothing: only for learnwares you trust.
    """

    def __init__(self, envs_dir: str | os.PathLike[str], manager: str = "venv", *, lock_timeout: float = 900.0,
                 pip_timeout: float = 900.0) -> None:
        if manager not in ENV_MANAGERS:
            raise UsageError(f"unknown env manager {manager!r}", hint="use 'venv' or 'none'")
        self.envs_dir = Path(envs_dir).absolute()  # the worker runs in another cwd
        self.manager = manager
        self.lock_timeout = lock_timeout
        self.pip_timeout = pip_timeout

    # -- lookup ------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        return self.envs_dir / key

    @staticmethod
    def _python_in(path: Path) -> Path:
        return path / "bin" / "python"

    def _ready(self, path: Path) -> dict | None:
        try:
            meta = json.loads((path / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return meta if self._python_in(path).exists() else None

    def ensure(self, requirements: list[str]) -> Env:
        """The env for ``requirements``, building it once if needed."""
        reqs = normalise_requirements(requirements)
        if self.manager == "none":
            if reqs:
                log.warning("env manager 'none': not installing %s", ", ".join(reqs))
            return Env(key="none", python=sys.executable, path=None, manager="none", requirements=reqs)
        key = env_key(reqs)
        path = self.path_for(key)
        if self._ready(path) is not None:  # fast path: no lock for a finished env
            return Env(key=key, python=str(self._python_in(path)), path=path, manager="venv", requirements=reqs)
        from filelock import FileLock, Timeout

        locks = self.envs_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(locks / f"{key}.lock"))
        try:
            with lock.acquire(timeout=self.lock_timeout):
                if self._ready(path) is not None:  # another process built it meanwhile
                    return Env(key=key, python=str(self._python_in(path)), path=path, manager="venv", requirements=reqs)
                t0 = time.perf_counter()
                self._build(path, key, reqs)
                took = time.perf_counter() - t0
        except Timeout:
            from ..errors import LockTimeoutError

            raise LockTimeoutError(f"env {key} is being built by another process; gave up after {self.lock_timeout:.0f}s") from None
        return Env(key=key, python=str(self._python_in(path)), path=path, manager="venv", requirements=reqs,
                   built_s=took, created=True)

    # -- build -------------------------------------------------------------
    def _build(self, path: Path, key: str, reqs: list[str]) -> None:
        import venv

        if path.exists():  # a half-built env from a crashed builder
            shutil.rmtree(path)
        log.info("building env %s%s", key, f" ({', '.join(reqs)})" if reqs else "")
        try:
            venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(str(path))
            child_site = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
            child_site.mkdir(parents=True, exist_ok=True)
            # `import` lines in a .pth run at start-up; addsitedir also honours the
            # parent's own .pth files (editable installs, for instance).
            chain = "".join(f"import site; site.addsitedir({d!r})\n" for d in _parent_site_dirs())
            (child_site / "_lwdock_parent.pth").write_text(chain)
            if reqs:
                self._pip_install(path, reqs)
            (path / "requirements.txt").write_text("".join(r + "\n" for r in reqs))
            if getattr(os, "geteuid", lambda: -1)() == 0:  # the sandboxed worker runs as another uid
                _readable_by_all(path)
            meta = {
                "key": key,
                "requirements": reqs,
                "python": ".".join(map(str, sys.version_info[:3])),
                "parent": _parent_site_dirs(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_atomic(path / MARKER, json.dumps(meta, indent=2).encode())  # the env exists from here on
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def _pip_install(self, path: Path, reqs: list[str]) -> None:
        import importlib.util

        if importlib.util.find_spec("pip") is None:
            raise EnvBuildError("pip is not available in lwdock's environment",
                                hint="install pip, or use --env-manager none for trusted learnwares")
        cmd = [sys.executable, "-m", "pip", "--python", str(self._python_in(path)), "install", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off", *reqs]
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.pip_timeout, env=env)
        except subprocess.TimeoutExpired:
            raise EnvBuildError(f"pip install timed out after {self.pip_timeout:.0f}s: {' '.join(reqs)}") from None
        (path / "pip.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise EnvBuildError(f"cannot install {' '.join(reqs)}: {_pip_reason(proc.stderr or proc.stdout)}",
                                hint="fix requirements.txt; lwdock never drops a requirement, and installs wheels "
                                     "only (building an sdist would run its code outside the sandbox)")

    # -- list / prune ------------------------------------------------------
    def list(self, *, sizes: bool = True) -> list[dict]:
        """Every env directory, with ``state`` "ready" or "incomplete"."""
        rows: list[dict] = []
        if not self.envs_dir.is_dir():
            return rows
        for p in sorted(self.envs_dir.iterdir()):
            if not p.is_dir() or p.name.startswith("."):
                continue
            meta = self._ready(p)
            rows.append({
                "key": p.name,
                "state": "ready" if meta else "incomplete",
                "requirements": (meta or {}).get("requirements", []),
                "python": (meta or {}).get("python"),
                "created": (meta or {}).get("created"),
                "last_used": _last_used(p),
                "size_mb": round(_dir_size(p) / 2**20, 2) if sizes else None,
                "path": str(p),
            })
        return rows

    def touch(self, key: str) -> None:
        """Record a use (``envs list`` shows it; prune can keep recent ones)."""
        try:
            (self.path_for(key) / ".last-used").write_text(str(time.time()))
        except OSError:
            pass

    def prune(self, *, keep: set[str] | None = None, dry_run: bool = False) -> list[dict]:
        """Remove every env whose key is not in ``keep`` (default: remove all).

        Each removal takes that env's lock, so an env being built is skipped.
        """
        from filelock import FileLock, Timeout

        keep = keep or set()
        removed = []
        for row in self.list(sizes=True):
            if row["key"] in keep:
                continue
            if not dry_run:
                lock = FileLock(str(self.envs_dir / ".locks" / f"{row['key']}.lock"))
                try:
                    with lock.acquire(timeout=0):
                        p = Path(row["path"])
                        (p / MARKER).unlink(missing_ok=True)  # unusable first, then gone
                        shutil.rmtree(p, ignore_errors=True)
                except Timeout:
                    log.warning("env %s is in use by a builder; skipped", row["key"])
                    continue
            removed.append(row)
        return removed


def _readable_by_all(root: Path) -> None:
    """a+r on files, a+rx on folders and executables (never any write bit)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            extra = 0o555 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o100 else 0o444
            if st.st_mode & extra != extra:
                os.chmod(p, st.st_mode | extra)
    os.chmod(root, os.stat(root).st_mode | 0o555)


def _last_used(path: Path) -> str | None:
    try:
        t = float((path / ".last-used").read_text())
    except (OSError, ValueError):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
