"""The two kinds of dock the CLI tests run on (conftest's ``backend`` and ``module_backend``).

``local``: the default, a TinyDB index and the zips in the dock directory.
``team``: a PostgreSQL index (a new database on the session's private server, tests/_pgserver.py,
for every dock) and the zips on the session's moto S3 server (a new bucket for every dock),
i.e. ``lwdock init --index postgresql://... --blobs s3://...``.

A test creates each dock through one of these, so one test body covers both kinds.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from lwdock import Dock

_numbers = itertools.count()


class LocalBackend:
    name = "local"
    team = False

    def urls(self) -> dict[str, str]:
        """``index`` and ``blobs`` of a new dock (empty: the defaults)."""
        return {}

    def env(self) -> dict[str, str]:
        """Variables the lwdock processes of a test need (the S3 endpoint and credentials)."""
        return {}

    def init_args(self) -> list[str]:
        """What ``lwdock init`` needs after its name to create a new dock of this kind."""
        return [f"--{key}={value}" for key, value in self.urls().items()]

    def init_env(self) -> dict[str, str]:
        """The same as variables (``LWDOCK_INDEX``, ``LWDOCK_BLOBS``): ``init`` with no options."""
        return {f"LWDOCK_{key.upper()}": value for key, value in self.urls().items()}

    def init(self, path: str | Path, **kw: Any) -> Dock:
        """A new dock at ``path`` through the Python API."""
        return Dock.init(path, **self.urls(), **kw)

    def check_used(self) -> None:
        pass

    def lose_blob(self, dock_path: Path, lw_id: str) -> None:
        """Delete a learnware's zip behind the dock's back (doctor's scenarios)."""
        next((Path(dock_path) / "objects").rglob(f"{lw_id}.zip")).unlink()

    def stored_ids(self, dock_path: Path) -> set[str]:
        """Ids of the zips the dock's blob store holds."""
        return {p.name[:64] for p in (Path(dock_path) / "objects").rglob("*.zip")}


class TeamBackend(LocalBackend):
    name = "team"
    team = True

    def __init__(self, pg: Any, s3: Any) -> None:
        self.pg, self.s3 = pg, s3
        self.created: list[str] = []

    def urls(self) -> dict[str, str]:
        n = next(_numbers)
        self.s3.create_bucket(f"cli{n}")
        self.created.append(self.pg.create_database(f"cli{n}"))
        return {"index": self.created[-1], "blobs": f"s3://cli{n}/dock"}

    def check_used(self) -> None:
        """Every team dock handed out was created by lwdock (its schema is there): the team variant
        of a test cannot pass on a local dock by mistake."""
        import psycopg

        for url in self.created:
            with psycopg.connect(url) as conn:
                found = conn.execute("SELECT to_regclass('dock_meta') IS NOT NULL").fetchone()[0]
            assert found, f"the team dock {url} was handed out but never initialised"

    def env(self) -> dict[str, str]:
        return self.s3.env()

    def lose_blob(self, dock_path: Path, lw_id: str) -> None:
        dock = Dock.open(dock_path)
        dock.blobs.fs.rm_file(dock.blobs.key(lw_id))
        dock.layout.blob(lw_id).unlink(missing_ok=True)  # this machine's verified copy
        dock.close()

    def stored_ids(self, dock_path: Path) -> set[str]:
        dock = Dock.open(dock_path)
        try:
            return {o.lw_id for o in dock.blobs.objects() if o.kind == "zip"}
        finally:
            dock.close()
