"""``lwdock doctor``: find and repair what interrupted processes leave behind.

The index is the commit point, so everything outside it is either a finished
learnware (listed in the index) or a leftover: an orphan blob or manifest, a
stale unpacked directory, scratch files. Repair removes leftovers and rebuilds
missing caches; ``rebuild_index`` recreates the index from blobs + manifests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LwdockError
from .index import open_index, write_atomic
from .scratch import owner_alive as _owner_alive
from .verify import OUTDATED, mismatch

if TYPE_CHECKING:
    from .dock import Dock


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_doctor(dock: Dock, *, repair: bool = True, rebuild_index: bool = False) -> dict[str, Any]:
    from .dock import index_entry, sha256_file

    lay = dock.layout
    problems: list[str] = []  # the index and the files disagree
    leftovers: list[str] = []  # garbage from interrupted work; never visible to users
    repaired: list[str] = []

    def fix(msg: str, action, garbage: bool = False) -> None:  # type: ignore[no-untyped-def]
        (leftovers if garbage else problems).append(msg)
        if repair:
            action()
            repaired.append(msg)

    with dock.lock():
        blobs = {p.stem: p for p in lay.objects.glob("*/*.zip")}
        if rebuild_index:
            entries = []
            for lw_id, blob in sorted(blobs.items()):
                m = _manifest(lay.manifest(lw_id))
                if m is None or m.get("removed") or m.get("id") != lw_id:
                    continue
                entries.append(index_entry(m))
            backup = lay.root / "index.bak"  # keep the old (maybe corrupt) index for inspection
            shutil.rmtree(backup, ignore_errors=True)
            if lay.index_dir.exists():
                lay.index_dir.replace(backup)
            with open_index(lay.index_dir) as idx:
                idx.replace_all(entries)
            repaired.append(f"rebuilt the index from {len(entries)} stored learnwares")
        try:
            with open_index(lay.index_dir) as idx:
                entries = idx.all()
                aliases = idx._meta_doc().get("aliases") or {}
        except LwdockError as exc:
            problems.append(str(exc))
            return {"ok": False, "problems": problems, "leftovers": leftovers, "repaired": repaired, "learnwares": None}
        known = {e["id"]: e for e in entries}
        want_aliases = {e["alias"]: e["id"] for e in entries if e.get("alias")}
        if aliases != want_aliases:
            fix("alias map disagrees with the entries", lambda: _reset_aliases(lay.index_dir, want_aliases))

        for lw_id, entry in known.items():
            blob = lay.blob(lw_id)
            if not blob.is_file():
                problems.append(f"learnware {lw_id[:12]} is indexed but its blob is missing")
                continue
            if sha256_file(blob) != lw_id:
                problems.append(f"blob of learnware {lw_id[:12]} does not match its hash (modified on disk)")
            if _manifest(lay.manifest(lw_id)) is None:
                fix(
                    f"manifest of {lw_id[:12]} is missing",
                    lambda e=entry, i=lw_id: write_atomic(lay.manifest(i), json.dumps(e).encode()),
                )
            unpacked = lay.unpacked_dir(lw_id)
            if not (unpacked / "learnware.yaml").is_file():
                fix(f"unpacked cache of {lw_id[:12]} is missing", lambda i=lw_id: dock._rebuild_unpacked(i))
            elif why := mismatch(unpacked, lay.unpacked_stamp(lw_id)):  # content hashes, not sizes and mtimes
                fix(f"unpacked files of {lw_id[:12]} were modified: the copy {why}" if why != OUTDATED else
                    f"unpacked copy of {lw_id[:12]} {why}", lambda i=lw_id: dock._rebuild_unpacked(i),
                    garbage=why == OUTDATED)

        for lw_id, blob in blobs.items():
            if lw_id not in known:
                fix(
                    f"orphan blob {lw_id[:12]} (an interrupted submit or remove)",
                    lambda b=blob, i=lw_id: (b.unlink(missing_ok=True), lay.manifest(i).unlink(missing_ok=True)),
                    garbage=True,
                )
        for man in lay.objects.glob("*/*.json"):
            if man.stem not in blobs and man.stem not in known:
                fix(f"orphan manifest {man.stem[:12]}", lambda m=man: m.unlink(missing_ok=True), garbage=True)
        for d in lay.unpacked.iterdir() if lay.unpacked.exists() else ():
            if d.name.split(".")[0] not in known:
                fix(f"stale unpacked cache {d.name[:12]}", lambda d=d: _rm(d), garbage=True)
        for t in lay.tmp.iterdir() if lay.tmp.exists() else ():
            if _owner_alive(t.name):
                continue  # a submit in another process is still working here
            fix(f"leftover scratch {t.name}", lambda t=t: _rm(t), garbage=True)
        for t in list(lay.index_dir.glob(".*.tmp")) + list(lay.objects.glob("*/.*.tmp")):
            fix(f"leftover temp file {t.name}", lambda t=t: t.unlink(missing_ok=True), garbage=True)

        try:
            from ..search import cache
        except ImportError:
            cache = None  # type: ignore[assignment]
        if cache is not None and hasattr(cache, "rebuild"):
            stale = getattr(cache, "is_stale", None)
            if stale is not None and stale(dock):
                # search never uses a stale cache (generation check), so this is not an inconsistency
                fix("search cache is out of date", lambda: cache.rebuild(dock), garbage=True)
            elif repair and (stale is None or rebuild_index):
                cache.rebuild(dock)

    remaining = [p for p in problems if p not in repaired]
    return {
        "ok": not remaining,
        "problems": problems,
        "leftovers": leftovers,
        "repaired": repaired,
        "learnwares": len(known),
    }


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _reset_aliases(index_dir: Path, aliases: dict[str, str]) -> None:
    with open_index(index_dir) as idx:
        meta = idx._meta_doc()
        meta["aliases"] = aliases
        idx._set_meta(meta)
