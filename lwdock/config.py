"""Every environment variable lwdock reads is parsed here, and nowhere else."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError


def _as_bool(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _as_float(name: str, value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"environment variable {name}={value!r} is not a number") from None


def _as_int(name: str, value: str | None, default: int) -> int:
    return int(_as_float(name, value, float(default)))


def default_dock_dir() -> Path:
    """The platform data directory used when neither --dock nor LWDOCK_HOME is set."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "lwdock"
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "lwdock"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lwdock"


def default_cache_dir() -> Path:
    """Per-user cache directory (scratch of ``lwdock check ZIP`` when there is no dock)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "lwdock"
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "lwdock" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lwdock"


SANDBOX_MODES = ("kernel", "weak")
MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def _as_choice(name: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    if value is None or value.strip() == "":
        return default
    if value.strip() not in choices:
        raise UsageError(f"environment variable {name}={value!r} is not one of: {', '.join(choices)}")
    return value.strip()


@dataclass(frozen=True)
class Settings:
    """Process-wide settings read from the environment.

    Attributes
    ----------
    home: dock directory from ``LWDOCK_HOME`` (None when unset).
    lock_timeout: seconds to wait for the dock lock (``LWDOCK_LOCK_TIMEOUT``, default 60).
    no_progress: disable progress bars (``LWDOCK_NO_PROGRESS``).
    debug: show tracebacks (``LWDOCK_DEBUG``).
    max_members: most zip members accepted (``LWDOCK_MAX_MEMBERS``, default 2000).
    max_unpacked_bytes: most uncompressed bytes accepted (``LWDOCK_MAX_UNPACKED_MB``, default 1024 MiB).
    device: default torch device (``LWDOCK_DEVICE``, default "cpu").
    fault: test-only fault-injection point (``LWDOCK_FAULT``): the process kills itself there.
    sandbox: how learnware code is isolated (``LWDOCK_SANDBOX``): "kernel" (default; bubblewrap)
        or "weak" (resource limits only; for trusted learnwares). See docs/sandbox.md.
    fork_server: fork kernel-sandboxed workers from a per-environment fork server when lwdock
        runs as root (``LWDOCK_FORK_SERVER``, default on; ``0`` starts every worker fresh).
    dask_address: the Dask scheduler that ``--executor dask`` uses (``DASK_SCHEDULER_ADDRESS``,
        dask's own variable); None starts a local cluster.
    index: the index of a dock that ``init`` creates (``LWDOCK_INDEX``): None or "tinydb" for the
        local TinyDB index, or a ``postgresql://`` URL for a team dock (docs/team.md). An existing
        dock keeps the index it was created with (its dock.json).
    blobs: where ``init`` puts a new dock's zips (``LWDOCK_BLOBS``): None or "local" for the dock
        directory, or an fsspec URL such as ``s3://bucket/prefix`` (credentials and endpoint from
        the usual AWS variables, which botocore reads itself).
    steady_heap: the first search fixes glibc's malloc thresholds for the process
        (``LWDOCK_STEADY_HEAP``, default on; ``0`` leaves malloc as it is; :mod:`lwdock._heap`).
    malloc_tuned: the environment sets glibc's malloc thresholds itself (``MALLOC_TRIM_THRESHOLD_``,
        ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or a ``glibc.malloc`` tunable in
        ``GLIBC_TUNABLES``: glibc's own variables): searches then leave them as they are too.
    """

    home: Path | None
    lock_timeout: float
    no_progress: bool
    debug: bool
    max_members: int
    max_unpacked_bytes: int
    device: str
    fault: str | None = None
    sandbox: str = "kernel"
    fork_server: bool = True
    dask_address: str | None = None
    index: str | None = None
    blobs: str | None = None
    steady_heap: bool = True
    malloc_tuned: bool = False


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = env.get("LWDOCK_HOME")
    return Settings(
        home=Path(home).expanduser() if home else None,
        lock_timeout=_as_float("LWDOCK_LOCK_TIMEOUT", env.get("LWDOCK_LOCK_TIMEOUT"), 60.0),
        no_progress=_as_bool(env.get("LWDOCK_NO_PROGRESS")),
        debug=_as_bool(env.get("LWDOCK_DEBUG")),
        max_members=_as_int("LWDOCK_MAX_MEMBERS", env.get("LWDOCK_MAX_MEMBERS"), 2000),
        max_unpacked_bytes=_as_int("LWDOCK_MAX_UNPACKED_MB", env.get("LWDOCK_MAX_UNPACKED_MB"), 1024)
        * 1024
        * 1024,
        device=env.get("LWDOCK_DEVICE", "cpu") or "cpu",
        fault=env.get("LWDOCK_FAULT") or None,
        sandbox=_as_choice("LWDOCK_SANDBOX", env.get("LWDOCK_SANDBOX"), SANDBOX_MODES, "kernel"),
        fork_server=_as_bool(env.get("LWDOCK_FORK_SERVER"), True),
        dask_address=env.get("DASK_SCHEDULER_ADDRESS") or None,
        index=(env.get("LWDOCK_INDEX") or "").strip() or None,
        blobs=(env.get("LWDOCK_BLOBS") or "").strip() or None,
        steady_heap=_as_bool(env.get("LWDOCK_STEADY_HEAP"), True),
        malloc_tuned=any(env.get(k) for k in MALLOC_VARIABLES) or "glibc.malloc." in env.get("GLIBC_TUNABLES", ""),
    )


def resolve_dock_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--dock, then LWDOCK_HOME, then the platform data directory."""
    if explicit:
        return Path(explicit).expanduser()
    settings = load_settings()
    if settings.home is not None:
        return settings.home
    return default_dock_dir()
