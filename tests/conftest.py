"""Shared fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# CI (.ci/run) sets this: there the real sandbox must run, and its absence fails the suite
REQUIRE_SANDBOX = os.environ.get("LWDOCK_TEST_REQUIRE_SANDBOX", "") not in ("", "0")


def _kernel_sandbox() -> str | None:
    """None when kernel isolation works here, else why not."""
    from lwdock.check.sandbox import probe

    found = probe()
    return found if isinstance(found, str) else None


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # never touch the user's real dock or cache; no progress bars in test output
    monkeypatch.setenv("LWDOCK_HOME", str(tmp_path / "default-dock"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LWDOCK_NO_PROGRESS", "1")
    monkeypatch.delenv("LWDOCK_FAULT", raising=False)
    monkeypatch.delenv("LWDOCK_SANDBOX", raising=False)
    for name in ("LWDOCK_INDEX", "LWDOCK_BLOBS"):  # a developer's team dock never becomes a test's default
        monkeypatch.delenv(name, raising=False)
    if _kernel_sandbox() is not None and not REQUIRE_SANDBOX:
        # no bubblewrap here (a developer's Mac): the rest of the suite runs learnwares
        # with limits only; the tests that need the real sandbox skip, loudly
        monkeypatch.setenv("LWDOCK_SANDBOX", "weak")
    yield


def require_kernel_sandbox() -> None:
    """Skip (loudly) without kernel isolation; fail instead where it is required (CI)."""
    why = _kernel_sandbox()
    if why is not None:
        if REQUIRE_SANDBOX:
            pytest.fail(f"the kernel sandbox is required here (LWDOCK_TEST_REQUIRE_SANDBOX) but unavailable: {why}")
        pytest.skip(f"NO KERNEL SANDBOX ON THIS MACHINE, isolation not tested: {why}")


@pytest.fixture
def kernel_sandbox():
    """Use in every test whose point is kernel isolation."""
    require_kernel_sandbox()


@pytest.fixture
def dock(tmp_path):
    from lwdock import Dock

    return Dock.init(tmp_path / "dock")


# -- team docks: a private PostgreSQL server and an S3 server, one of each per session (per xdist worker)
REQUIRE_POSTGRES = os.environ.get("LWDOCK_TEST_REQUIRE_POSTGRES", "") not in ("", "0")  # set by .ci/run


@pytest.fixture(scope="session")
def pg():
    """A private PostgreSQL server (tests/_pgserver.py); skips without the binaries, fails in CI."""
    from _pgserver import PgServer, PgUnavailable

    try:
        server = PgServer()
    except PgUnavailable as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here (LWDOCK_TEST_REQUIRE_POSTGRES) but unavailable: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on localhost (tests/_motoserver.py); skips without moto[server], fails in CI."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"moto[server] is required here (LWDOCK_TEST_REQUIRE_POSTGRES) but not installed: {exc}")
        pytest.skip(f"moto[server] is not installed: {exc}")
    from _motoserver import MotoServer

    server = MotoServer()
    yield server
    server.stop()


BACKENDS = ["local", pytest.param("team", marks=[pytest.mark.postgres, pytest.mark.s3])]


def _backend(request):
    from _backends import LocalBackend, TeamBackend

    if request.param == "local":
        return LocalBackend()
    return TeamBackend(request.getfixturevalue("pg"), request.getfixturevalue("s3_server"))


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Where a test's docks live: ``local`` (TinyDB + the dock directory) or ``team`` (PostgreSQL +
    S3, a new database and bucket per dock). Create every dock through it (tests/_backends.py):
    ``backend.init(path)``, ``lwdock init *backend.init_args()``; its variables are set here."""
    found = _backend(request)
    for key, value in found.env().items():
        monkeypatch.setenv(key, value)
    yield found
    found.check_used()


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request):
    """``backend`` for a dock that a whole module shares (a module-scoped fixture builds it)."""
    found = _backend(request)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in found.env().items():
            mp.setenv(key, value)
        yield found
    found.check_used()


@pytest.fixture(scope="session")
def image_market():
    """Digits learnwares with image specs (fitted once per run: about 4 s). Read-only."""
    from _dense_market import ImageMarket

    return ImageMarket(seed=0)


@pytest.fixture(scope="session")
def text_market():
    """Topic learnwares with text specs on the offline hashing embedder. Read-only."""
    from _dense_market import TextMarket

    return TextMarket(embedder="hashing-384")


@pytest.fixture
def lwdock_bin():
    exe = Path(sys.executable).parent / "lwdock"
    if not exe.exists():
        pytest.skip("lwdock console script not installed")
    return str(exe)


def pytest_xdist_make_scheduler(config, log):
    """``make test`` runs two pytest-xdist workers with ``--dist loadfile``: a test file runs on one
    worker, so its module-scoped fixtures are built once; here the local and the team variants of a
    file (``backend`` / ``module_backend``) are two units, so a module's shared dock is built once
    per kind, and the two kinds can run at the same time."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileAndDockKind(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, rest = nodeid.partition("::")
            ids = rest.rpartition("[")[2].rstrip("]").split("-") if rest.endswith("]") else []
            kind = next((i for i in ids if i in ("local", "team")), None)
            return f"{path}[{kind}]" if kind else path

    return FileAndDockKind(config, log)


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_report_header(config):
    why = _kernel_sandbox()
    return f"lwdock sandbox: {'kernel (bubblewrap)' if why is None else 'UNAVAILABLE: ' + why}"
