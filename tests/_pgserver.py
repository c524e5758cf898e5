"""A throw-away PostgreSQL server for the team-dock tests (Debian's postgresql package).

``initdb`` refuses root, so as root every server command runs as the ``postgres`` user
(``runuser``) in a directory directly under /tmp (pytest's 0700 base is not traversable by it,
and the unix socket path must stay under 107 bytes). Durability is off: a test server never
outlives a machine crash, and commits get ~5x faster; a SIGKILLed *client* still loses its open
transaction, which is what the tests need. The server is stopped (immediate) and its directory
removed at the end; servers left by a killed pytest are swept at the next start.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PREFIX = "lwdock-pg-"
USER = "lwdock"


class PgUnavailable(RuntimeError):
    pass


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if os.environ.get("LWDOCK_PG_BIN"):
        found.append(os.path.join(os.environ["LWDOCK_PG_BIN"], "initdb"))
    if not found or (os.geteuid() == 0 and shutil.which("runuser") is None):
        raise PgUnavailable("PostgreSQL server binaries not found: apt-get install -y postgresql")
    return Path(found[-1]).parent


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C", "LANG": "C"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sweep_stale() -> None:
    """Stop and remove servers whose owning process is gone."""
    for root in glob.glob(f"/tmp/{PREFIX}*"):
        try:
            owner = int(Path(root).name[len(PREFIX):].split("-")[0])
            os.kill(owner, 0)
            continue  # owner alive
        except (ValueError, ProcessLookupError):
            pass
        except PermissionError:
            continue
        if (Path(root) / "data" / "postmaster.pid").exists():
            _run([str(bindir() / "pg_ctl"), "-D", f"{root}/data", "-m", "immediate", "stop"], Path(root))
        shutil.rmtree(root, ignore_errors=True)


class PgServer:
    def __init__(self) -> None:
        self.bin = bindir()
        sweep_stale()
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir="/tmp"))
        (self.root / "sock").mkdir()
        if os.geteuid() == 0:
            for p in (self.root, self.root / "sock"):
                shutil.chown(p, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        p = _run([str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync"], self.root)
        if p.returncode:
            raise RuntimeError(f"initdb failed: {p.stderr[-2000:]}")
        for _ in range(3):  # another process may take the port between the probe and the bind
            self.port = _free_port()
            opts = (f"-p {self.port} -k {self.root}/sock -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            p = _run([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w",
                      "-o", opts, "start"], self.root)
            if p.returncode == 0:
                return
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {p.stderr[-2000:]}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            _run([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"], self.root)
        shutil.rmtree(self.root, ignore_errors=True)
