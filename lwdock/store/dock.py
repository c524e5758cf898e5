"""The Dock: a local directory of learnwares with a locked TinyDB index.

Every CLI command is one call into this class (or into the search/reuse APIs
that take a Dock). Writes follow one rule: files first, index last. A learnware
exists once its index entry is written, so a process killed at any point leaves
it either fully present or absent; leftovers are orphans that ``doctor`` removes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import (
    AmbiguousIdError,
    CheckFailedError,
    ConflictError,
    DockError,
    LwdockError,
    NotFoundError,
    UsageError,
)
from ..format import semantic as sem
from ..format.archive import Limits
from .index import Index, open_index, write_atomic
from .layout import LAYOUT_VERSION, Layout, fault_point
from ..format.package import Package, open_package, parse_package

logger = logging.getLogger("lwdock")

STATUSES = ("usable", "semantic-only", "invalid")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 4


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Dock:
    """A learnware dock directory. Use :meth:`init` to create one and :meth:`open` to use one."""

    def __init__(self, path: Path, *, lock_timeout: float | None = None, limits: Limits | None = None) -> None:
        from ..config import load_settings

        self.path = Path(path)
        self.layout = Layout(self.path)
        self.lock_timeout = load_settings().lock_timeout if lock_timeout is None else lock_timeout
        self.limits = limits or Limits.from_settings()

    # -- creation ------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str], *, gamma: float = 0.1, **kw: Any) -> Dock:
        """Create a dock at ``path`` (idempotent for an existing dock with the same gamma)."""
        if not gamma > 0:
            raise UsageError(f"gamma must be positive, got {gamma}")
        dock = cls(Path(path), **kw)
        lay = dock.layout
        if lay.version_file.exists():
            dock._check_version()
            if abs(dock.settings["gamma"] - gamma) > 1e-15:
                raise ConflictError(
                    f"dock {dock.path} already exists with gamma {dock.settings['gamma']}, not {gamma}",
                    hint="a dock's kernel gamma is fixed at creation; create a new dock for another gamma",
                )
            return dock
        if dock.path.exists() and any(dock.path.iterdir()):
            raise DockError(f"{dock.path} exists, is not empty and is not a dock")
        lay.make_dirs()
        write_atomic(
            lay.settings_file,
            json.dumps({"layout_version": LAYOUT_VERSION, "gamma": float(gamma), "created": _now()}, indent=2).encode(),
        )
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
        from .lock import locked

        with locked(self.layout.lock_file, self.lock_timeout):
            yield

    @contextmanager
    def _index(self) -> Iterator[Index]:
        with self.lock(), open_index(self.layout.index_dir) as idx:
            yield idx

    def generation(self) -> int:
        with self._index() as idx:
            return idx.generation()

    def entries(self, status: str | list[str] | None = None) -> list[dict[str, Any]]:
        with self._index() as idx:
            items = idx.all()
        if status is not None:
            wanted = {status} if isinstance(status, str) else set(status)
            items = [e for e in items if e.get("status") in wanted]
        return items

    def list(
        self,
        *,
        status: str | None = None,
        data_type: str | None = None,
        task: str | None = None,
        library: str | None = None,
        scenario: str | None = None,
        license: str | None = None,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries filtered on status and semantic tags, newest first."""
        if status is not None and status not in STATUSES:
            raise UsageError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
        out = []
        for e in self.entries(status):
            s = e.get("semantic", {})
            if data_type and (sem.value(s, "Data") or "").lower() != data_type.lower():
                continue
            if task and (sem.value(s, "Task") or "").lower() != task.lower():
                continue
            if library and (sem.value(s, "Library") or "").lower() != library.lower():
                continue
            if license and (sem.value(s, "License") or "").lower() != license.lower():
                continue
            if scenario and scenario.lower() not in [v.lower() for v in sem.value(s, "Scenario") or []]:
                continue
            if name:
                text = f"{sem.value(s, 'Name') or ''} {sem.value(s, 'Description') or ''} {e.get('alias') or ''}"
                if name.lower() not in text.lower():
                    continue
            out.append(e)
        out.sort(key=lambda e: (e.get("created", ""), e["id"]), reverse=True)
        return out

    # -- lookup ------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """Alias, full id or unique id prefix (at least 4 hex digits) -> id."""
        return self.get(ref)["id"]

    def get(self, ref: str, *, full: bool = False) -> dict[str, Any]:
        """The index entry; ``full=True`` adds the complete check report from the manifest."""
        with self._index() as idx:
            entry = _resolve(idx, ref)
            if full:
                stored = _read_manifest(self.layout.manifest(entry["id"]))
                if stored is not None and stored.get("id") == entry["id"]:
                    entry = {**stored, **{k: v for k, v in entry.items() if k != "check"}}
            return entry

    def blob_path(self, ref: str) -> Path:
        return self.layout.blob(self.resolve(ref))

    def unpacked_dir(self, ref: str) -> Path:
        """The unpacked cache of a learnware, rebuilt from its blob when missing or modified.

        Models are loaded from here, so every file is compared (size, mtime)
        with the stamp written when it was unpacked; any difference, or an
        extra or missing file, means the cache is re-extracted from the blob.
        """
        lw_id = self.resolve(ref)
        target = self.layout.unpacked_dir(lw_id)
        if not (target / "learnware.yaml").is_file():
            self._rebuild_unpacked(lw_id)
        elif not _stamp_matches(target, self.layout.unpacked_stamp(lw_id)):
            logger.warning("unpacked files of learnware %s were modified; restoring them from its zip", lw_id[:12])
            self._rebuild_unpacked(lw_id)
        return target

    def package(self, ref: str) -> Package:
        return parse_package(self.unpacked_dir(ref))

    def spec_path(self, ref: str, kind: str = "table") -> Path:
        lw_id = self.resolve(ref)
        path = self.package(lw_id).spec_path(kind)
        if path is None:
            raise NotFoundError(f"learnware {lw_id[:12]} has no {kind} specification")
        return path

    def _rebuild_unpacked(self, lw_id: str) -> None:
        blob = self.layout.blob(lw_id)
        if not blob.is_file():
            raise DockError(f"blob for learnware {lw_id[:12]} is missing", hint="run `lwdock doctor`")
        scratch = self.layout.tmp / f"unpack-{os.getpid()}-{uuid.uuid4().hex}"
        open_package(blob, scratch / "pkg", limits=self.limits)
        target = self.layout.unpacked_dir(lw_id)
        with self.lock():
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(scratch / "pkg", target)
            _write_stamp(target, self.layout.unpacked_stamp(lw_id))
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
    ) -> dict[str, Any]:
        """Check a learnware zip and store it. All or nothing.

        ``semantic`` replaces the package's own semantic_specification.json;
        ``semantic_flags`` (keyword arguments of ``semantic.from_flags``) then
        override single fields.
        Raises CheckFailedError (nothing stored) when a check fails.
        """
        zip_path = Path(zip_path)
        if alias is not None:
            _check_alias(alias)
        from ..format.archive import open_zip

        open_zip(zip_path).close()  # one-line errors for missing, empty or non-zip files
        lw_id = sha256_file(zip_path)
        existing = self._lookup_existing(lw_id)
        if existing is not None:
            if exist_ok:
                return existing
            raise ConflictError(f"learnware {lw_id[:12]} is already in the dock", hint="use --exist-ok in batch jobs")

        scratch = self.layout.tmp / f"submit-{os.getpid()}-{uuid.uuid4().hex}"
        scratch.mkdir(parents=True)
        try:
            pkg = open_package(zip_path, scratch / "pkg", limits=self.limits)
            raw_semantic = semantic if semantic is not None else pkg.semantic
            flags = {k: v for k, v in (semantic_flags or {}).items() if v not in (None, [], ())}
            if flags:
                raw_semantic = sem.from_flags(base=raw_semantic, **flags)
            if raw_semantic is None:
                raise sem.SemanticSpecError(
                    "no semantic specification: the zip has none and none was given",
                    hint="pass --semantic FILE or flags such as --name, --data-type, --task",
                )
            semantic = sem.validate(raw_semantic)
            report = _run_checks(pkg, semantic, self, run_model=run_model, env_manager=env_manager, timeout=check_timeout)
            if report["status"] == "invalid":
                failed = next((c for c in report["checks"] if not c["ok"]), {"name": "?", "reason": "?"})
                raise CheckFailedError(
                    f"learnware failed the '{failed['name']}' check: {failed['reason']}", report=report
                )
            entry = {
                "id": lw_id,
                "alias": alias,
                "semantic": semantic,
                "status": report["status"],
                "check": report,
                "specs": _spec_summaries(pkg),
                "requirements": pkg.requirements,
                "size": zip_path.stat().st_size,
                "created": _now(),
            }
            self._commit_new(zip_path, scratch, entry)
            return entry
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _lookup_existing(self, lw_id: str) -> dict[str, Any] | None:
        with self._index() as idx:
            return idx.get(lw_id)

    def _commit_new(self, zip_path: Path, scratch: Path, entry: dict[str, Any]) -> None:
        lay = self.layout
        lw_id = entry["id"]
        with self._index() as idx:
            if idx.get(lw_id) is not None:
                raise ConflictError(f"learnware {lw_id[:12]} is already in the dock")
            if entry["alias"] and idx.get(idx.alias_target(entry["alias"]) or "--") is not None:
                raise ConflictError(f"alias {entry['alias']!r} is already in use")
            blob = lay.blob(lw_id)
            blob.parent.mkdir(parents=True, exist_ok=True)
            tmp_blob = scratch / "blob.zip"
            shutil.copyfile(zip_path, tmp_blob)
            with open(tmp_blob, "rb") as fh:
                os.fsync(fh.fileno())
            if sha256_file(tmp_blob) != lw_id:
                raise ConflictError(f"{zip_path} changed while it was being submitted")
            os.chmod(tmp_blob, 0o444)
            os.replace(tmp_blob, blob)
            fault_point("submit:after-blob")
            write_atomic(lay.manifest(lw_id), json.dumps(entry, separators=(",", ":")).encode())
            target = lay.unpacked_dir(lw_id)
            if target.exists():
                shutil.rmtree(target)
            os.replace(scratch / "pkg", target)
            _write_stamp(target, lay.unpacked_stamp(lw_id))
            fault_point("submit:before-index")
            idx.insert(index_entry(entry))
            _search_hook("on_change", self, added=[entry], removed=[])
        fault_point("submit:after-index")

    # -- changes -----------------------------------------------------------------
    def set_alias(self, ref: str, alias: str | None) -> dict[str, Any]:
        if alias is not None:
            _check_alias(alias)
        with self._index() as idx:
            entry = _resolve(idx, ref)
            owner = idx.alias_target(alias) if alias else None
            if owner and owner != entry["id"] and idx.get(owner) is not None:
                raise ConflictError(f"alias {alias!r} is already in use")
            idx.update(entry["id"], {"alias": alias})
            entry["alias"] = alias
            self._update_manifest(entry["id"], {"alias": alias}, fallback=entry)
        return entry

    def _update_manifest(self, lw_id: str, fields: dict[str, Any], fallback: dict[str, Any]) -> None:
        stored = _read_manifest(self.layout.manifest(lw_id))
        base = stored if stored is not None and stored.get("id") == lw_id else fallback
        write_atomic(self.layout.manifest(lw_id), json.dumps({**base, **fields}, separators=(",", ":")).encode())

    def remove(self, ref: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Remove a learnware. The index entry goes first; files follow."""
        lay = self.layout
        with self._index() as idx:
            entry = _resolve(idx, ref)
            if dry_run:
                return entry
            lw_id = entry["id"]
            # tombstone the manifest so an index rebuild never resurrects it
            if lay.manifest(lw_id).exists():
                write_atomic(lay.manifest(lw_id), json.dumps({"id": lw_id, "removed": True}).encode())
            idx.remove(lw_id)
            _search_hook("on_change", self, added=[], removed=[lw_id])
        with self.lock():
            for p in (lay.blob(lw_id), lay.manifest(lw_id), lay.unpacked_stamp(lw_id)):
                p.unlink(missing_ok=True)
            shutil.rmtree(lay.unpacked_dir(lw_id), ignore_errors=True)
        return entry

    def export(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a learnware's zip (byte-identical, so its id is unchanged) to ``dest``."""
        lw_id = self.resolve(ref)
        src = self.layout.blob(lw_id)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{lw_id[:12]}.zip"
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest

    def recheck(self, ref: str, *, run_model: bool = True, env_manager: str = "venv") -> dict[str, Any]:
        """Run the checks again on a stored learnware and store the new status and report."""
        entry = self.get(ref)
        pkg = self.package(entry["id"])
        report = _run_checks(pkg, entry["semantic"], self, run_model=run_model, env_manager=env_manager)
        with self._index() as idx:
            idx.update(entry["id"], {"status": report["status"], "check": compact_report(report)})
            entry.update(status=report["status"], check=report)
            self._update_manifest(entry["id"], {"status": report["status"], "check": report}, fallback=entry)
            _search_hook("on_change", self, added=[entry], removed=[entry["id"]])
        return entry

    def doctor(self, *, repair: bool = True, rebuild_index: bool = False) -> dict[str, Any]:
        from .doctor import run_doctor

        return run_doctor(self, repair=repair, rebuild_index=rebuild_index)


# -- helpers -----------------------------------------------------------------------
def compact_report(report: dict[str, Any]) -> dict[str, Any]:
    """The check report as the index keeps it: names and results, reasons of failures only.

    The full report (environment, sandbox, model shapes, every reason) stays in the
    manifest; keeping the index small keeps listing and search fast on big docks.
    """
    checks = [
        {"name": c["name"], "ok": c.get("ok"), **({"reason": c.get("reason")} if c.get("ok") is False else {})}
        for c in report.get("checks", [])
    ]
    return {"status": report.get("status"), "checks": checks}


def index_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "check": compact_report(entry.get("check") or {})}


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and not data.get("removed") else None

def _file_stamps(root: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # bytecode Python may write
        for name in filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[p.relative_to(root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _write_stamp(root: Path, stamp: Path) -> None:
    write_atomic(stamp, json.dumps(_file_stamps(root), separators=(",", ":")).encode())


def _stamp_matches(root: Path, stamp: Path) -> bool:
    try:
        want = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return _file_stamps(root) == want


def _check_alias(alias: str) -> None:
    if not _ALIAS_RE.match(alias) or (_HEX_RE.match(alias) and len(alias) >= MIN_PREFIX):
        raise UsageError(
            f"invalid alias {alias!r}: use a letter first, then letters, digits, '.', '_' or '-' "
            "(at most 64), and not a hex string that could be an id prefix"
        )


def _resolve(idx: Index, ref: str) -> dict[str, Any]:
    """Alias first, then id prefix; reads the alias map and one shard, not the whole index."""
    ref = ref.strip()
    target = idx.alias_target(ref) if ref else None
    entry = idx.get(target) if target else None
    if entry is not None:
        return entry
    low = ref.lower()
    candidates = idx.with_prefix(low) if len(low) >= 2 and _HEX_RE.match(low) else []
    return _find(candidates, ref)


def _find(entries: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    ref = ref.strip()
    if not ref:
        raise UsageError("empty learnware id")
    for e in entries:
        if e.get("alias") == ref:
            return e
    low = ref.lower()
    if not _HEX_RE.match(low):
        raise NotFoundError(f"no learnware with alias {ref!r}")
    if len(low) < MIN_PREFIX:
        raise UsageError(f"id prefix {ref!r} is too short; give at least {MIN_PREFIX} hex digits")
    hits = [e for e in entries if e["id"].startswith(low)]
    if not hits:
        raise NotFoundError(f"no learnware with id {ref!r}")
    if len(hits) > 1:
        shown = ", ".join(e["id"][:12] for e in hits[:5])
        raise AmbiguousIdError(f"id prefix {ref!r} matches {len(hits)} learnwares ({shown}); give more digits")
    return hits[0]


def _spec_summaries(pkg: Package) -> list[dict[str, Any]]:
    out = []
    for s in pkg.stat_specs:
        info: dict[str, Any] = {"kind": s.kind, "class_name": s.class_name, "file_name": s.file_name}
        try:
            from ..spec.specfile import load_spec

            spec = load_spec(pkg.root / s.file_name)
            info.update(dim=int(spec.dim), gamma=float(getattr(spec, "gamma", 0.0) or 0.0))
            info["num_points"] = int(getattr(spec, "num_points_", 0) or 0)
        except (ImportError, LwdockError) as exc:  # the checks report spec problems; keep the summary going
            info["error"] = str(exc)
        out.append(info)
    return out


def _run_checks(
    pkg: Package, semantic: dict[str, Any], dock: Dock, *, timeout: float | None = None, **kw: Any
) -> dict[str, Any]:
    from ..check.checks import run_checks

    if timeout is not None:
        kw["timeout"] = timeout
    report = run_checks(pkg, semantic, envs_dir=dock.layout.envs, **kw)
    return report.to_dict() if hasattr(report, "to_dict") else report



def _search_hook(name: str, dock: Dock, **kw: Any) -> None:
    """Keep the search cache in step with the index (called inside the dock lock)."""
    try:
        from ..search import cache
    except ImportError:
        return
    fn = getattr(cache, name, None)
    if fn is not None:
        fn(dock, **kw)
