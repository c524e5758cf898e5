"""Which index and blob store a dock uses, from its ``dock.json`` (written by ``init``).

    {"index": "postgresql://host/db", "blobs": "s3://bucket/prefix", ...}   a team dock
    (no "index" / "blobs" keys)                                               a local dock

A team dock's directory holds what stays on each machine: the verified local copies of the zips
it used, the unpacked copies, learnware environments, the search store and scratch. Its
settings that every machine must share (the kernel gamma) live in the index (``dock_meta``):
the first ``init`` writes them, later ones join and check them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..errors import ConflictError, UsageError
from .blobs import LocalBlobs, RemoteBlobs
from .index import TinyBackend
from .layout import Layout
from .pgindex import PgBackend

DEFAULTS = {"index": "tinydb", "blobs": "local"}
PG_SCHEMES = ("postgresql://", "postgres://")


def check_urls(index: str | None, blobs: str | None) -> tuple[str | None, str | None]:
    """``index`` and ``blobs`` as stored in dock.json (None for the defaults); UsageError when
    one names nothing lwdock can use."""
    index = None if index in (None, "", DEFAULTS["index"]) else index
    blobs = None if blobs in (None, "", DEFAULTS["blobs"]) else blobs
    if index is not None and not index.startswith(PG_SCHEMES):
        raise UsageError(f"unknown index {index!r}: use tinydb or a postgresql:// URL")
    if index is not None and urlsplit(index).password:
        raise UsageError("the index URL holds a password, which dock.json and `init` would show",
                         hint="leave it out of the URL: PostgreSQL reads PGPASSWORD or ~/.pgpass")
    if blobs is not None and "://" not in blobs:
        raise UsageError(f"unknown blob store {blobs!r}: use local or a URL such as s3://bucket/prefix")
    return index, blobs


def open_backends(layout: Layout, index: str | None, blobs: str | None) -> tuple[Any, Any]:
    """The index backend and the blob store of a dock (nothing connects until first used)."""
    backend = PgBackend(index) if index else TinyBackend(layout.index_dir)
    store = RemoteBlobs(blobs, layout) if blobs else LocalBlobs(layout)
    return backend, store


def join_shared(backend: Any, blobs: Any, settings: dict[str, Any], gamma_given: bool = True) -> float | None:
    """Reach the shared stores of a new dock; returns its recorded gamma (the team's, for a team
    index; None when none was recorded). The schema is created when the database has none; a
    different gamma, when one was given, is a ConflictError."""
    if getattr(blobs, "remote", False):
        blobs.check_reachable()
    given = settings["gamma"]
    if backend.kind == "tinydb":
        return given
    backend.ensure_schema()
    shared = backend.set_meta_once("gamma", given)
    if gamma_given and (shared is None or abs(float(shared) - float(given)) > 1e-15):
        backend.close()
        raise ConflictError(f"the team dock's gamma is {shared}, not {given}",
                            hint="join it without --gamma; a dock's recorded gamma is fixed at creation")
    return shared
