"""The Dock: a local directory of learnwares with a locked TinyDB index.

Every CLI command is one call into this class (or into the search/reuse APIs
that take a Dock). Writes follow one rule: files first, index last. A learnware
exists once its index entry is written, so a process killed at any point leaves
it either fully present or absent; leftovers are orphans that ``doctor`` removes.

Reads return :class:`~lwdock.records.Entry` records. Each change of the index is
announced to the listeners (:meth:`Dock.subscribe`) as a
:class:`~lwdock.store.events.DockChanged`; the store itself knows no consumer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ..check.checks import run_checks
from ..config import load_settings
from ..errors import (
    AmbiguousIdError,
    CheckFailedError,
    ConflictError,
    DockError,
    LwdockError,
    NotFoundError,
    SemanticSpecError,
    UsageError,
)
from ..format import semantic as sem
from ..format.archive import Limits, open_zip
from ..format.ids import sha256_file
from ..format.package import Package, open_package, parse_package
from ..records import INVALID, STATUSES, CheckReport, Entry, SpecSummary
from . import doctor as _doctor
from .events import DerivedData, DockChanged, Listener
from .backends import DEFAULTS, check_urls, join_shared, open_backends
from .bulk import check_new
from .index import Index, index_entry, write_atomic
from .layout import LAYOUT_VERSION, Layout, fault_point
from .lock import locked
from .verify import mismatch, record_stamp, verified_copy

logger = logging.getLogger("lwdock")

__all__ = ["Dock", "EntryFilter", "MIN_PREFIX", "STATUSES", "index_entry", "sha256_file"]

_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 4
ID_LIKE_ALIAS = 12  # hex digits: the short ids that tables show on a terminal


class EntryFilter(Protocol):
    """What :meth:`Dock.list` filters with (:class:`lwdock.search.semantic.SemanticQuery` is one)."""

    def select(self, entries: Sequence[Entry]) -> list[Entry]: ...


def check_statuses(status: str | Sequence[str] | None) -> list[str]:
    """``status`` as a list of known statuses (empty: any)."""
    wanted = [status] if isinstance(status, str) else list(status or ())
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise UsageError(f"unknown status {unknown[0]!r}; allowed: {', '.join(STATUSES)}")
    return wanted




def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Dock:
    """A learnware dock directory. Use :meth:`init` to create one and :meth:`open` to use one.

    This is the storage core. :class:`lwdock.Dock` (``lwdock/api.py``) is the same dock with the
    search cache attached as a listener; the CLI and the Python API use that one.
    """

    def __init__(self, path: Path, *, lock_timeout: float | None = None, limits: Limits | None = None) -> None:
        self.path = Path(path)
        self.layout = Layout(self.path)
        self.lock_timeout = load_settings().lock_timeout if lock_timeout is None else lock_timeout
        self.limits = limits or Limits.from_settings()
        self._listeners: list[Listener] = []
        self._derived: list[DerivedData] = []
        self._backends: tuple[Any, Any] | None = None

    # -- backends ------------------------------------------------------------------
    def _open_backends(self) -> tuple[Any, Any]:
        if self._backends is None:
            settings = self.settings if self.layout.settings_file.exists() else {}
            self._backends = open_backends(self.layout, settings.get("index"), settings.get("blobs"))
        return self._backends

    @property
    def backend(self) -> Any:
        """The index backend: :class:`~lwdock.store.index.TinyBackend` or
        :class:`~lwdock.store.pgindex.PgBackend`."""
        return self._open_backends()[0]

    @property
    def blobs(self) -> Any:
        """The blob store: :class:`~lwdock.store.blobs.LocalBlobs` or :class:`~lwdock.store.blobs.RemoteBlobs`."""
        return self._open_backends()[1]

    @property
    def is_team(self) -> bool:
        """True when the index is shared (PostgreSQL): filters run as SQL, writers use transactions."""
        return self.backend.kind != "tinydb"

    def close(self) -> None:
        """Close the index connections (a team dock); the Dock reopens them when used again."""
        if self._backends is not None:
            self._backends[0].close()

    # -- listeners ---------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(DockChanged)`` on every change of the index (inside the dock lock,
        before the change is written; see :mod:`lwdock.store.events`)."""
        self._listeners.append(listener)

    def attach(self, derived: DerivedData) -> None:
        """Keep ``derived`` in step with the index, and let ``doctor`` check and rebuild it."""
        self.subscribe(derived.on_change)
        self._derived.append(derived)

    @property
    def derived(self) -> tuple[DerivedData, ...]:
        return tuple(self._derived)

    def _emit(self, idx: Index, added: Sequence[Entry] = (), removed: Sequence[str] = ()) -> None:
        event = DockChanged(added=tuple(added), removed=tuple(removed), generation=idx.generation())
        for listener in self._listeners:
            listener(event)
        fault_point("change:before-index-write")  # derived data written, the index session not yet

    # -- creation ------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str], *, gamma: float | None = None, index: str | None = None,
             blobs: str | None = None, **kw: Any) -> Dock:
        """Create a dock at ``path`` (idempotent for an existing dock with the same settings).

        ``gamma`` is recorded for reference only: search compares specs under a kernel the dock
        chooses per feature space (lwdock.search.kernel); None (the default) records none.
        ``index``: "tinydb" (default) or a ``postgresql://`` URL; ``blobs``: "local" (default) or an
        object-store URL such as ``s3://bucket/prefix``; None takes ``LWDOCK_INDEX`` /
        ``LWDOCK_BLOBS``. With a PostgreSQL index this joins the team dock when it exists (the
        directory at ``path`` then holds this machine's caches), or creates it.
        """
        if gamma is not None and not 0 < gamma < float("inf"):
            raise UsageError(f"gamma must be a positive finite number, got {gamma}")
        given = check_urls(index, blobs)
        settings = load_settings()
        index, blobs = check_urls(index or settings.index, blobs or settings.blobs)
        dock = cls(Path(path), **kw)
        lay = dock.layout
        if lay.version_file.exists():
            dock._check_version()
            have = dock.settings.get("gamma")
            _same(dock.path, "gamma", have, gamma,
                  gamma is None or (have is not None and abs(float(have) - gamma) <= 1e-15))
            for key, value in zip(("index", "blobs"), given):  # only what the caller asked for
                have = dock.settings.get(key) or DEFAULTS[key]
                _same(dock.path, key, have, value, value is None or (value or DEFAULTS[key]) == have)
            return dock
        if dock.path.exists() and any(dock.path.iterdir()):
            raise DockError(f"{dock.path} exists, is not empty and is not a dock")
        doc = {"layout_version": LAYOUT_VERSION, "gamma": None if gamma is None else float(gamma), "created": _now()}
        if index:
            doc["index"] = index
        if blobs:
            doc["blobs"] = blobs
        backend, store = open_backends(lay, index, blobs)
        doc["gamma"] = join_shared(backend, store, doc, gamma is not None)  # a team dock's gamma is the team's
        lay.make_dirs()
        write_atomic(lay.settings_file, json.dumps(doc, indent=2).encode())
        write_atomic(lay.version_file, f"{LAYOUT_VERSION}\n".encode())
        return dock

    @classmethod
    def open(cls, path: str | os.PathLike[str], **kw: Any) -> Dock:
        dock = cls(Path(path), **kw)
        if not dock.layout.version_file.exists():
            raise DockError(f"{dock.path} is not an lwdock dock", hint=f"create it with `lwdock --dock {path} init`")
        dock._check_version()
        dock.layout.make_dirs()
        return dock

    def _check_version(self) -> None:
        try:
            version = int(self.layout.version_file.read_text().strip())
        except (OSError, ValueError):
            raise DockError(f"{self.layout.version_file} is unreadable") from None
        if version > LAYOUT_VERSION:
            raise DockError(
                f"dock {self.path} has layout version {version}; this lwdock reads up to {LAYOUT_VERSION}",
                hint="upgrade lwdock",
            )

    @property
    def settings(self) -> dict[str, Any]:
        try:
            return json.loads(self.layout.settings_file.read_text())
        except (OSError, json.JSONDecodeError):
            raise DockError(f"{self.layout.settings_file} is missing or corrupt") from None

    # -- locking and index -------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """The dock's cross-process lock (reentrant within a process)."""
        with locked(self.layout.lock_file, self.lock_timeout):
            yield

    @contextmanager
    def index(self) -> Iterator[Index]:
        """One locked index session: reads see one state; changes are written once, at the end
        (TinyDB: under the dock lock; PostgreSQL: one transaction, under this machine's lock too,
        which guards the local caches the listeners update)."""
        with self.lock(), self.backend.session() as idx:
            yield idx

    @contextmanager
    def writing(self, lw_id: str) -> Iterator[None]:
        """Held for a whole submit or remove of ``lw_id``: the dock lock (TinyDB), or the id's
        advisory lock on the team index (every machine; see lwdock.store.pgindex)."""
        if self.is_team:
            with self.backend.writing(lw_id):
                yield
        else:
            with self.lock():
                yield

    def generation(self) -> int:
        with self.index() as idx:
            return idx.generation()

    def entries(self, status: str | Sequence[str] | None = None) -> list[Entry]:
        with self.index() as idx:
            items = idx.all()
        if status is not None:
            wanted = {status} if isinstance(status, str) else set(status)
            items = [e for e in items if e.status in wanted]
        return items

    def list(self, query: EntryFilter | None = None, *, status: str | Sequence[str] | None = None) -> list[Entry]:
        """Entries with one of the ``status`` values that ``query`` selects, newest first.

        :meth:`lwdock.Dock.list` takes the semantic filters as keywords and builds the query.
        """
        wanted = check_statuses(status)
        items = self.entries(wanted or None)
        if query is not None:
            items = query.select(items)
        return sorted(items, key=lambda e: (e.created, e.id), reverse=True)

    def changes_since(self, generation: int) -> tuple[int, list[tuple[int, str | None, str]]] | None:
        """(current generation, [(generation, id, op)]) of the index's changes after ``generation``,
        where the index keeps a change log (a team dock); None otherwise (derived data then diffs
        the whole index)."""
        log = getattr(self.backend, "changes_since", None)
        return log(generation) if log is not None else None

    def get_many(self, ids: Sequence[str]) -> list[Entry]:
        """The index entries of ``ids`` (full ids), in that order; ids not in the index are left out."""
        with self.index() as idx:
            found = idx.get_many(list(ids))
        return [e for e in found if e is not None]

    # -- lookup ------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """Alias, full id or unique id prefix (at least 4 hex digits) -> id."""
        return self.get(ref).id

    def get(self, ref: str, *, full: bool = False) -> Entry:
        """The index entry; ``full=True`` adds the complete check report from the manifest."""
        with self.index() as idx:
            entry = _resolve(idx, ref)
            if full:
                stored = _live_manifest(self.blobs.read_manifest(entry.id))
                if stored is not None and stored.get("id") == entry.id:
                    entry = Entry.from_dict({**stored, **{k: v for k, v in entry.to_dict().items() if k != "check"}})
            return entry

    def blob_path(self, ref: str) -> Path:
        """The learnware's zip as a local file (downloaded and verified first from a remote store)."""
        return self.blobs.local(self.resolve(ref))

    def unpacked_dir(self, ref: str) -> Path:
        """The verified copy of a learnware, re-extracted from its blob when any file's hash differs.

        Models are loaded from here; see ``lwdock.store.verify``.
        """
        return verified_copy(self.layout, self.resolve(ref), self.rebuild_unpacked)

    def unpacked_state(self, lw_id: str) -> str:
        """The unpacked copy of ``lw_id`` checked by content hash: "ok", "missing", or why it differs
        (``lwdock.store.verify.OUTDATED`` for a stamp written by an older lwdock)."""
        target = self.layout.unpacked_dir(lw_id)
        if not (target / "learnware.yaml").is_file():
            return "missing"
        return mismatch(target, self.layout.unpacked_stamp(lw_id)) or "ok"

    def package(self, ref: str) -> Package:
        return parse_package(self.unpacked_dir(ref))

    def spec_path(self, ref: str, kind: str = "table") -> Path:
        lw_id = self.resolve(ref)
        path = self.package(lw_id).spec_path(kind)
        if path is None:
            raise NotFoundError(f"learnware {lw_id[:12]} has no {kind} specification")
        return path

    def rebuild_unpacked(self, lw_id: str) -> None:
        """Extract the unpacked cache of ``lw_id`` again from its blob."""
        blob = self.blobs.local(lw_id)
        scratch = self.layout.tmp / f"unpack-{os.getpid()}-{uuid.uuid4().hex}"
        open_package(blob, scratch / "pkg", limits=self.limits)
        target = self.layout.unpacked_dir(lw_id)
        with self.lock():
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(scratch / "pkg", target)
            record_stamp(blob, self.layout.unpacked_stamp(lw_id), self.limits)
        shutil.rmtree(scratch, ignore_errors=True)

    # -- submit ------------------------------------------------------------------
    def submit(
        self,
        zip_path: str | os.PathLike[str],
        semantic: dict[str, Any] | None = None,
        *,
        semantic_flags: dict[str, Any] | None = None,
        alias: str | None = None,
        run_model: bool = True,
        env_manager: str = "venv",
        exist_ok: bool = False,
        check_timeout: float | None = None,
    ) -> Entry:
        """Check a learnware zip and store it. All or nothing.

        ``semantic`` replaces the package's own semantic_specification.json;
        ``semantic_flags`` (keyword arguments of ``semantic.from_flags``) then
        override single fields.
        Raises CheckFailedError (nothing stored) when a check fails.
        """
        scratch = self.layout.tmp / f"submit-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            entry = self.check_new(zip_path, semantic, scratch, semantic_flags=semantic_flags, alias=alias,
                                   run_model=run_model, env_manager=env_manager, exist_ok=exist_ok,
                                   check_timeout=check_timeout)
            if self.is_checked(scratch, entry):
                (error,) = self.commit_new([(Path(zip_path), scratch, entry)])
                if error is not None:
                    raise error
            return entry
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def is_checked(scratch: Path, entry: Entry) -> bool:
        """Did :meth:`check_new` leave ``entry`` checked in ``scratch``, to commit (False: already stored)?"""
        return (scratch / f"ok-{entry.id}").is_file()

    def check_new(
        self,
        zip_path: str | os.PathLike[str],
        semantic: dict[str, Any] | None,
        scratch: Path,
        *,
        semantic_flags: dict[str, Any] | None = None,
        alias: str | None = None,
        run_model: bool = True,
        env_manager: str = "venv",
        exist_ok: bool = False,
        check_timeout: float | None = None,
    ) -> Entry:
        """The checks of :meth:`submit`, without storing: the entry to commit, or the stored one.

        The checked package is left in ``scratch/pkg`` with a marker ``scratch/ok-<id>`` for
        :meth:`commit_new`; an entry already in the dock (``exist_ok``) leaves no marker.
        The caller removes ``scratch``. Raises as :meth:`submit` does.
        """
        zip_path = Path(zip_path)
        if alias is not None:
            _check_alias(alias)
        open_zip(zip_path).close()  # one-line errors for missing, empty or non-zip files
        lw_id = sha256_file(zip_path)
        existing = self._lookup_existing(lw_id)
        if existing is not None:
            if exist_ok:  # an alias asked for is set (or refused), never dropped
                return existing if alias in (None, existing.alias) else self.set_alias(lw_id, alias)
            raise ConflictError(f"learnware {lw_id[:12]} is already in the dock", hint="use --exist-ok in batch jobs")
        if alias is not None:  # before the checks run (minutes); committing checks again
            with self.index() as idx:
                _check_alias_free(idx, alias, lw_id)
        scratch.mkdir(parents=True)
        pkg = open_package(zip_path, scratch / "pkg", limits=self.limits)
        semantic = _semantic_for(pkg, semantic, semantic_flags)
        report = self._run_checks(pkg, semantic, run_model=run_model, env_manager=env_manager, timeout=check_timeout)
        if report.status == INVALID:
            failed = next(iter(report.failures()), {"name": "?", "reason": "?"})
            raise CheckFailedError(
                f"learnware failed the '{failed['name']}' check: {failed['reason']}",
                report=report.to_dict(),
            )
        entry = Entry(
            id=lw_id,
            alias=alias,
            semantic=semantic,
            status=report.status,
            check=report,
            specs=_spec_summaries(pkg),
            requirements=pkg.requirements,
            size=zip_path.stat().st_size,
            created=_now(),
        )
        (scratch / f"ok-{lw_id}").touch()
        return entry

    def _lookup_existing(self, lw_id: str) -> Entry | None:
        with self.index() as idx:
            return idx.get(lw_id)

    def commit_new(self, items: Sequence[tuple[Path, Path, Entry]]) -> list[LwdockError | None]:
        """Store checked learnwares (``(zip, scratch, entry)`` from :meth:`check_new`).

        Each learnware is all or nothing, as in :meth:`submit`: blob, manifest and unpacked copy
        first, the index entry (the commit point) last, so a killed submit leaves either the whole
        learnware or leftovers that ``doctor`` removes. On a local dock the whole batch is ONE
        index session (the index file is written once, at the end); on a team dock each learnware
        is its own transaction under its id's lock. Returns, per item, None (stored) or the
        ConflictError that kept it out.
        """
        results: list[LwdockError | None] = []
        if self.is_team:
            for item in items:
                try:
                    self._commit_one(*item)
                except ConflictError as exc:
                    results.append(exc)
                    continue
                results.append(None)
            return results
        added: list[Entry] = []
        with self.index() as idx:  # the dock lock: what :meth:`writing` takes on a local dock
            for zip_path, scratch, entry in items:
                try:
                    _check_new(idx, entry)
                    self._put_files(zip_path, scratch, entry)
                except ConflictError as exc:
                    results.append(exc)
                    continue
                idx.insert(entry)
                added.append(entry)
                results.append(None)
            if added:
                self._emit(idx, added=added)
        fault_point("submit:after-index")
        return results

    def _put_files(self, zip_path: Path, scratch: Path, entry: Entry) -> None:
        """Everything of a new learnware but its index entry: blob, manifest, unpacked copy."""
        self.blobs.put(zip_path, entry.id, scratch)
        fault_point("submit:after-blob")
        self.blobs.write_manifest(entry.to_dict())
        with self.lock():
            self._install_unpacked(scratch / "pkg", entry.id)
        fault_point("submit:before-index")

    def _commit_one(self, zip_path: Path, scratch: Path, entry: Entry) -> None:
        """One learnware on a team dock, under its id's lock on every machine."""
        with self.writing(entry.id):
            with self.index() as idx:
                _check_new(idx, entry)
            self._put_files(zip_path, scratch, entry)
            try:
                with self.index() as idx:
                    _check_new(idx, entry)
                    idx.insert(entry)
                    self._emit(idx, added=[entry])
            except ConflictError:  # lost a race for the alias on another machine: nothing refers to the blob
                self.blobs.delete(entry.id)
                raise
        fault_point("submit:after-index")

    def _install_unpacked(self, src: Path, lw_id: str) -> None:
        lay = self.layout
        target = lay.unpacked_dir(lw_id)
        if target.exists():
            shutil.rmtree(target)
        os.replace(src, target)
        record_stamp(lay.blob(lw_id), lay.unpacked_stamp(lw_id), self.limits)

    # -- bulk load (lwdock.store.bulk) ----------------------------------------------
    def store_blob(self, zip_path: Path, entry: Entry) -> None:
        """Store a learnware's zip and manifest without checks, and unpack it here, as a submit does
        before its index entry (listeners read the spec files): ``lwdock.store.bulk``."""
        scratch = self.layout.tmp / f"bulk-{os.getpid()}-{uuid.uuid4().hex}"
        scratch.mkdir(parents=True)
        try:
            with self.writing(entry.id):
                self.blobs.put(zip_path, entry.id, scratch)
                self.blobs.write_manifest(entry.to_dict())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.rebuild_unpacked(entry.id)

    def insert_entries(self, entries: Sequence[Entry]) -> int:
        """Insert many entries in one index session and one change (``lwdock.store.bulk``)."""
        with self.index() as idx:
            existing = [e.id for e in idx.get_many([e.id for e in entries]) if e is not None]
            check_new(existing, idx.aliases(), list(entries))
            for entry in entries:
                if entry.alias:
                    _check_alias_free(idx, entry.alias, entry.id)
            idx.insert_many(entries)
            self._emit(idx, added=entries)
        return len(entries)

    # -- changes -----------------------------------------------------------------
    def set_alias(self, ref: str, alias: str | None) -> Entry:
        if alias is not None:
            _check_alias(alias)
        with self.index() as idx:
            entry = _resolve(idx, ref)
            if alias:
                _check_alias_free(idx, alias, entry.id)
            entry = entry.replace(alias=alias)
            idx.update(entry)
            self._emit(idx, added=[entry], removed=[entry.id])
            self._update_manifest(entry, alias=alias)
        return entry

    def _update_manifest(self, entry: Entry, **fields: Any) -> None:
        """Change ``fields`` in the manifest of ``entry`` (rewritten from ``entry`` when unreadable)."""
        stored = _live_manifest(self.blobs.read_manifest(entry.id))
        base = Entry.from_dict(stored) if stored is not None and stored.get("id") == entry.id else entry
        self.blobs.write_manifest(base.replace(**fields).to_dict())

    def remove(self, ref: str, *, dry_run: bool = False) -> Entry:
        """Remove a learnware. The index entry goes first; files follow."""
        entry = self.get(ref)
        if dry_run:
            return entry
        lw_id = entry.id
        with self.writing(lw_id):
            with self.index() as idx:
                entry = _resolve(idx, lw_id)
                idx.remove(lw_id)
                self._emit(idx, removed=[lw_id])
                # tombstone the manifest so an index rebuild never resurrects it
                if self.blobs.read_manifest(lw_id) is not None:
                    self.blobs.write_manifest({"id": lw_id, "removed": True})
            self.blobs.delete(lw_id)
            with self.lock():
                self.layout.unpacked_stamp(lw_id).unlink(missing_ok=True)
                shutil.rmtree(self.layout.unpacked_dir(lw_id), ignore_errors=True)
        return entry

    def export(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a learnware's zip (byte-identical, so its id is unchanged) to ``dest``."""
        lw_id = self.resolve(ref)
        src = self.blobs.local(lw_id)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{lw_id[:12]}.zip"
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest

    def recheck(self, ref: str, *, run_model: bool = True, env_manager: str = "venv") -> Entry:
        """Run the checks again on a stored learnware and store the new status and report."""
        entry = self.get(ref)
        pkg = self.package(entry.id)
        report = self._run_checks(pkg, entry.semantic.to_dict(), run_model=run_model, env_manager=env_manager)
        with self.index() as idx:
            entry = entry.replace(status=report.status, check=report)
            idx.update(entry)
            self._emit(idx, added=[entry], removed=[entry.id])
            self._update_manifest(entry, status=report.status, check=report)
        return entry

    def doctor(self, *, repair: bool = True, rebuild_index: bool = False) -> _doctor.DoctorReport:
        return _doctor.run_doctor(self, repair=repair, rebuild_index=rebuild_index)

    def _run_checks(self, pkg: Package, semantic: dict[str, Any], *, timeout: float | None = None,
                    **kw: Any) -> CheckReport:
        if timeout is not None:
            kw["timeout"] = timeout
        return run_checks(pkg, semantic, envs_dir=self.layout.envs, scratch_dir=self.layout.tmp, **kw)


# -- helpers -----------------------------------------------------------------------
def _semantic_for(pkg: Package, given: dict[str, Any] | None, flags: dict[str, Any] | None) -> dict[str, Any]:
    """The validated semantic spec of a submit: ``given`` (else the package's own), then ``flags``."""
    raw = given if given is not None else pkg.semantic
    flags = {k: v for k, v in (flags or {}).items() if v not in (None, [], ())}
    if flags:
        raw = sem.from_flags(base=raw, **flags)
    if raw is None:
        raise SemanticSpecError(
            "no semantic specification: the zip has none and none was given",
            hint="pass --semantic FILE or flags such as --name, --data-type, --task",
        )
    return sem.validate(raw)


def _live_manifest(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return data if isinstance(data, dict) and not data.get("removed") else None


def _check_new(idx: Index, entry: Entry) -> None:
    if idx.get(entry.id) is not None:
        raise ConflictError(f"learnware {entry.id[:12]} is already in the dock")
    if entry.alias:
        _check_alias_free(idx, entry.alias, entry.id)


def _same(path: Path, key: str, have: Any, given: Any, same: bool) -> None:
    if not same:
        raise ConflictError(
            f"dock {path} already exists with {key} {have}, not {given}",
            hint=f"a dock's {key} is fixed at creation; create a new dock for another {key}",
        )

def _check_alias(alias: str) -> None:
    """The form of an alias. A hex-looking one (``d6789``) is fine unless it is as long as the ids
    tables show (``ID_LIKE_ALIAS``); :func:`_check_alias_free` refuses one that is an id's prefix."""
    if not _ALIAS_RE.match(alias):
        raise UsageError(
            f"invalid alias {alias!r}: use a letter first, then letters, digits, '.', '_' or '-' (at most 64)"
        )
    if _HEX_RE.match(alias.lower()) and len(alias) >= ID_LIKE_ALIAS:
        raise UsageError(f"invalid alias {alias!r}: {ID_LIKE_ALIAS} or more hex digits read as a learnware id",
                         hint="add a letter beyond a-f, or shorten it")


def _check_alias_free(idx: Index, alias: str, own_id: str) -> None:
    """Refuse an alias in use by another learnware, or one that another learnware's id starts with.

    References resolve alias first, then id prefix: an alias that was an id prefix when it was set
    would hide that learnware from its short id. (An id that starts with an alias set earlier stays
    reachable with one more digit.)
    """
    owner = idx.alias_target(alias)
    if owner and owner != own_id and idx.get(owner) is not None:
        raise ConflictError(f"alias {alias!r} is already in use")
    low = alias.lower()
    if len(low) >= MIN_PREFIX and _HEX_RE.match(low):
        other = next((e for e in idx.with_prefix(low) if e.id != own_id), None)
        if other is not None:
            raise ConflictError(f"alias {alias!r} is the start of learnware {other.short_id}'s id",
                                hint="choose an alias that is not a prefix of an id in the dock")


def _resolve(idx: Index, ref: str) -> Entry:
    """Alias first, then id prefix; reads the alias map and one shard, not the whole index."""
    ref = ref.strip()
    target = idx.alias_target(ref) if ref else None
    entry = idx.get(target) if target else None
    if entry is not None:
        return entry
    low = ref.lower()
    candidates = idx.with_prefix(low) if len(low) >= 2 and _HEX_RE.match(low) else []
    return _find(candidates, ref)


def _find(entries: list[Entry], ref: str) -> Entry:
    ref = ref.strip()
    if not ref:
        raise UsageError("empty learnware id")
    for e in entries:
        if e.alias == ref:
            return e
    low = ref.lower()
    if not _HEX_RE.match(low):
        raise NotFoundError(f"no learnware with alias {ref!r}")
    if len(low) < MIN_PREFIX:
        raise UsageError(f"id prefix {ref!r} is too short; give at least {MIN_PREFIX} hex digits")
    hits = [e for e in entries if e.id.startswith(low)]
    if not hits:
        raise NotFoundError(f"no learnware with id {ref!r}")
    if len(hits) > 1:
        shown = ", ".join(e.short_id for e in hits[:5])
        raise AmbiguousIdError(f"id prefix {ref!r} matches {len(hits)} learnwares ({shown}); give more digits")
    return hits[0]


def _spec_summaries(pkg: Package) -> list[SpecSummary]:
    from ..spec.specfile import load_spec  # numpy: only a submit reads spec files, `list` must not pay

    out = []
    for s in pkg.stat_specs:
        try:
            spec = load_spec(pkg.root / s.file_name)
        except LwdockError as exc:  # the checks report spec problems; keep the summary going
            out.append(SpecSummary(s.kind, s.file_name, s.class_name, error=str(exc)))
            continue
        out.append(SpecSummary(s.kind, s.file_name, s.class_name, dim=int(spec.dim),
                               gamma=float(getattr(spec, "gamma", 0.0) or 0.0),
                               num_points=int(getattr(spec, "num_points_", 0) or 0)))
    return out
