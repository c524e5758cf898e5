"""``lwdock doctor``: find and repair what interrupted processes leave behind.

The index is the commit point, so everything outside it is either a finished
learnware (listed in the index) or a leftover: an orphan blob or manifest, a
stale unpacked directory, scratch files. Repair removes leftovers and rebuilds
missing caches; ``rebuild_index`` recreates the index from blobs + manifests.
Derived data registered with :meth:`Dock.attach` (the search cache) is checked
and rebuilt through its own ``is_stale``/``rebuild``.

This module sees the Dock only through its public methods.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LwdockError, NotFoundError
from ..format.ids import sha256_file
from ..records import Entry
from .blobs import BLOB_MISSING
from .index import write_atomic
from .._scratch import owner_alive as _owner_alive
from .verify import OUTDATED

if TYPE_CHECKING:  # the Dock calls run_doctor; importing it here would be a cycle
    from .dock import Dock


@dataclass
class DoctorReport:
    """What ``doctor`` found: ``problems`` (the index and the files disagree), ``leftovers``
    (garbage from interrupted work, never visible to users) and what it ``repaired``."""

    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    learnwares: int | None = None

    @property
    def ok(self) -> bool:
        return self.learnwares is not None and all(p in self.repaired for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "leftovers": self.leftovers, "repaired": self.repaired,
                "learnwares": self.learnwares}


def run_doctor(dock: Dock, *, repair: bool = True, rebuild_index: bool = False) -> DoctorReport:
    doc = _Doctor(dock, repair)
    with dock.lock():
        blobs = {p.stem: p for p in dock.layout.objects.glob("*/*.zip")}
        if rebuild_index:
            doc.rebuild_index(blobs)
        try:
            with dock.index() as idx:
                entries = idx.all()
                aliases = idx.aliases()
        except LwdockError as exc:
            doc.report.problems.append(str(exc))
            return doc.report
        known = {e.id: e for e in entries}
        doc.report.learnwares = len(known)
        doc.check_aliases(entries, aliases)
        if dock.blobs.remote:  # a team dock's store; the dock directory holds this machine's copies
            doc.check_remote(known)
            doc.remove_remote_leftovers(known)
            blobs = {i: p for i, p in blobs.items() if i not in known}  # cached copies of removed ones
        else:
            doc.check_learnwares(known)
        doc.remove_leftovers(blobs, known)
        doc.check_derived(rebuild_index)
    return doc.report


class _Doctor:
    """One doctor run: each step records what it finds and, with ``repair``, fixes it."""

    def __init__(self, dock: Dock, repair: bool) -> None:
        self.dock = dock
        self.layout = dock.layout
        self.repair = repair
        self.report = DoctorReport()

    def fix(self, msg: str, action: Callable[[], object], garbage: bool = False) -> None:
        (self.report.leftovers if garbage else self.report.problems).append(msg)
        if self.repair:
            action()
            self.report.repaired.append(msg)

    def rebuild_index(self, blobs: dict[str, Path]) -> None:
        lay = self.layout
        entries = []
        for lw_id in sorted(blobs):
            m = _manifest(lay.manifest(lw_id))
            if m is None or m.get("removed") or m.get("id") != lw_id:
                continue
            entries.append(Entry.from_dict(m))
        backup = lay.root / "index.bak"  # keep the old (maybe corrupt) index for inspection
        shutil.rmtree(backup, ignore_errors=True)
        if lay.index_dir.exists():
            lay.index_dir.replace(backup)
        with self.dock.index() as idx:
            idx.replace_all(entries)
        self.report.repaired.append(f"rebuilt the index from {len(entries)} stored learnwares")

    def check_aliases(self, entries: list[Entry], aliases: dict[str, str]) -> None:
        want = {e.alias: e.id for e in entries if e.alias}
        if aliases != want:
            self.fix("alias map disagrees with the entries", lambda: self._set_aliases(want))

    def _set_aliases(self, aliases: dict[str, str]) -> None:
        with self.dock.index() as idx:
            idx.set_aliases(aliases)

    def check_learnwares(self, known: dict[str, Entry]) -> None:
        lay = self.layout
        for lw_id, entry in known.items():
            blob = lay.blob(lw_id)
            if not blob.is_file():  # its content is gone: the entry goes, as `remove` would (restore the blob to keep it)
                self._drop_unbacked(lw_id)
                continue
            if sha256_file(blob) != lw_id:
                self.report.problems.append(f"blob of learnware {lw_id[:12]} does not match its hash (modified on disk)")
            if _manifest(lay.manifest(lw_id)) is None:
                self.fix(
                    f"manifest of {lw_id[:12]} is missing",
                    lambda e=entry, i=lw_id: write_atomic(lay.manifest(i), json.dumps(e.to_dict()).encode()),
                )
            state = self.dock.unpacked_state(lw_id)  # content hashes, not sizes and mtimes
            if state == "missing":
                self.fix(f"unpacked cache of {lw_id[:12]} is missing", lambda i=lw_id: self.dock.rebuild_unpacked(i))
            elif state == OUTDATED:  # a stamp of an older lwdock: re-extract quietly
                self.fix(f"unpacked copy of {lw_id[:12]} {state}", lambda i=lw_id: self.dock.rebuild_unpacked(i),
                         garbage=True)
            elif state != "ok":
                self.fix(f"unpacked files of {lw_id[:12]} were modified: the copy {state}",
                         lambda i=lw_id: self.dock.rebuild_unpacked(i))

    def _drop_unbacked(self, lw_id: str) -> None:
        self.fix(f"learnware {lw_id[:12]} is indexed but {BLOB_MISSING} (repair: remove its entry)",
                 lambda: self._drop(lw_id))

    def _drop(self, lw_id: str) -> None:
        try:
            self.dock.remove(lw_id)  # index entry, alias, derived data (its events), manifest, unpacked copy
        except NotFoundError:  # a team dock: another machine removed it meanwhile
            return
        if self.report.learnwares is not None:
            self.report.learnwares -= 1

    # -- blobs on object storage (lwdock.store.blobs.RemoteBlobs) -------------------------------------
    def check_remote(self, known: dict[str, Entry]) -> None:
        """Every indexed learnware's stored blob and manifest; this machine's unpacked copies are
        checked where it has one (the others are fetched when first used)."""
        store = self.dock.blobs
        for lw_id, entry in known.items():
            wrong = store.verify(lw_id, entry.size)
            if wrong == BLOB_MISSING:  # as on a local dock: the entry goes (the hint promises a repair)
                self._drop_unbacked(lw_id)
                continue
            if wrong:
                self.report.problems.append(f"learnware {lw_id[:12]} is indexed but {wrong}")
                continue
            if store.read_manifest(lw_id) is None:
                self.fix(f"manifest of {lw_id[:12]} is missing",
                         lambda e=entry: store.write_manifest(e.to_dict()))
            state = self.dock.unpacked_state(lw_id)
            if state not in ("ok", "missing"):
                self.fix(f"unpacked files of {lw_id[:12]} were modified: the copy {state}",
                         lambda i=lw_id: self.dock.rebuild_unpacked(i), garbage=state == OUTDATED)

    def remove_remote_leftovers(self, known: dict[str, Entry]) -> None:
        """Stored objects no index entry names: garbage when no writer holds their id (a team
        index's advisory lock; a local index's writers hold the dock lock, which doctor holds),
        in flight otherwise (left alone)."""
        store = self.dock.blobs
        orphans = sorted({o.lw_id for o in store.objects() if o.lw_id not in known})
        for upload in store.incomplete_uploads():
            if upload.get("lw_id") not in known:
                orphans.append(upload)
        for item in orphans:
            lw_id = item if isinstance(item, str) else item.get("lw_id") or ""
            if not self._free(lw_id):
                self.report.leftovers.append(f"upload of {lw_id[:12]} in progress (left alone)")
                continue
            try:
                if isinstance(item, str):
                    self.fix(f"orphan blob {lw_id[:12]} (an interrupted submit or remove)",
                             lambda i=lw_id: store.delete(i), garbage=True)
                else:
                    self.fix(f"incomplete upload of {lw_id[:12] or item.get('key')}",
                             lambda u=item: store.abort_upload(u), garbage=True)
            finally:
                self._release(lw_id)

    def _free(self, lw_id: str) -> bool:
        backend = self.dock.backend
        return not lw_id or not hasattr(backend, "try_writing") or backend.try_writing(lw_id)

    def _release(self, lw_id: str) -> None:
        backend = self.dock.backend
        if lw_id and hasattr(backend, "done_writing"):
            backend.done_writing(lw_id)

    def remove_leftovers(self, blobs: dict[str, Path], known: dict[str, Entry]) -> None:
        lay = self.layout
        for lw_id, blob in blobs.items():
            if lw_id not in known:
                self.fix(
                    f"orphan blob {lw_id[:12]} (an interrupted submit or remove)",
                    lambda b=blob, i=lw_id: (b.unlink(missing_ok=True), lay.manifest(i).unlink(missing_ok=True)),
                    garbage=True,
                )
        for man in lay.objects.glob("*/*.json"):
            if man.stem not in blobs and man.stem not in known:
                self.fix(f"orphan manifest {man.stem[:12]}", lambda m=man: m.unlink(missing_ok=True), garbage=True)
        for d in lay.unpacked.iterdir() if lay.unpacked.exists() else ():
            if d.name.split(".")[0] not in known:
                self.fix(f"stale unpacked cache {d.name[:12]}", lambda d=d: _rm(d), garbage=True)
        for t in lay.tmp.iterdir() if lay.tmp.exists() else ():
            if _owner_alive(t.name):
                continue  # a submit in another process is still working here
            self.fix(f"leftover scratch {t.name}", lambda t=t: _rm(t), garbage=True)
        for t in list(lay.index_dir.glob(".*.tmp")) + list(lay.objects.glob("*/.*.tmp")):
            self.fix(f"leftover temp file {t.name}", lambda t=t: t.unlink(missing_ok=True), garbage=True)

    def check_derived(self, rebuild_index: bool) -> None:
        for derived in self.dock.derived:
            if derived.is_stale():
                # readers never use stale derived data (they check the generation), so this is
                # garbage to tidy, not an inconsistency
                self.fix(f"{derived.name} is out of date", derived.rebuild, garbage=True)
            elif self.repair and rebuild_index:
                derived.rebuild()


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

