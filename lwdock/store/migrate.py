"""``lwdock migrate``: copy every learnware of one dock into another, verified by hash.

The usual uses: a local dock into a new team dock (PostgreSQL index, blobs on object storage),
and a team dock back into a local one (a backup, or leaving the team). Both docks must exist
(``lwdock init``; a team dock is joined with ``init --index ... --blobs ...``) and share the
kernel gamma.

Each zip is stored in the destination (checked against its id, the SHA-256 of the zip, as every
blob store does on put), then its entry and manifest are written through the bulk-load path
(:mod:`lwdock.store.bulk`, in chunks: one index session and one change each), so the
destination's summary and search store follow. Learnwares the destination already holds are
skipped, so an interrupted migration is finished by running it again. Afterwards every copied
blob is read back from the destination and hashed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DockError
from .bulk import bulk_load

if TYPE_CHECKING:  # this module calls the Dock; the Dock never calls it
    from .dock import Dock

CHUNK = 500


@dataclass
class MigrationReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the destination

    def to_dict(self) -> dict[str, object]:
        return {"copied": len(self.copied), "skipped": len(self.skipped), "verified": len(self.copied)}


def migrate(src: Dock, dst: Dock, *, chunk: int = CHUNK) -> MigrationReport:
    """Copy every learnware of ``src`` that ``dst`` lacks into ``dst`` (see the module doc)."""
    report = MigrationReport()
    have = {e.id for e in dst.entries()}
    todo = []
    for entry in src.entries():
        (report.skipped if entry.id in have else todo).append(entry.id)
    for start in range(0, len(todo), chunk):
        ids = todo[start : start + chunk]
        full = [src.get(i, full=True) for i in ids]  # with the full check report of the manifest
        bulk_load(dst, full, blobs={i: src.blob_path(i) for i in ids}, chunk=chunk)
        report.copied += ids
    for entry in dst.get_many(report.copied):
        wrong = dst.blobs.verify(entry.id, entry.size)
        if wrong or dst.blobs.hash_of(entry.id) != entry.id:
            raise DockError(f"learnware {entry.id[:12]} was not copied intact: {wrong or 'hash differs'}",
                            hint="run `lwdock doctor` on the destination, then migrate again")
    return report
