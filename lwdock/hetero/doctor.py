"""What ``lwdock doctor`` checks and repairs in the hetero index (wired in by :mod:`lwdock.api`)."""

from __future__ import annotations

import shutil
from typing import Any

from .maintain import ERRORS, PENDING, RunModel, as_entries, considered, eligible_of, open_store, sync, training_due
from .names import name_embedder_available, normalise_name


def problems(dock: Any) -> list[str]:
    """Everything that keeps the hetero index from matching the dock (empty when current)."""
    store = open_store(dock)
    with dock.lock():
        entries = as_entries(dock.entries())
        try:
            records = store.read_index()
            manifest = store.read_manifest()
        except ERRORS as exc:
            return [f"hetero index unreadable ({exc})"]
        want = {e.id for e in entries if considered(e)}
        found = []
        missing, extra = want - set(records), set(records) - want
        if missing or extra or (want and not store.exists()):
            found.append(f"hetero index misses {len(missing)} learnwares and holds {len(extra)} removed ones")
        eligible = eligible_of(records)
        lost = [i for i in eligible if not store.stats_file(i).exists()]
        if lost:
            found.append(f"hetero stats of {len(lost)} learnwares are missing")
        pending = [i for i, r in eligible.items() if r.importance == PENDING]
        if pending:
            found.append(f"column importance of {len(pending)} learnwares is not measured yet")
        if eligible and name_embedder_available():
            keys, _ = store.read_names()
            need = {normalise_name(n) for r in eligible.values() for n in r.names} - set(keys)
            if need:
                found.append(f"hetero name table misses {len(need)} column names")
        due = training_due(manifest, eligible, store)
        if due:
            found.append(due)
        junk = store.leftovers()
        if junk:
            found.append(f"hetero index has {len(junk)} leftover temp files")
        return found


def repair(dock: Any, run: RunModel | None) -> list[str]:
    """Catch up with the dock, measure pending importances, fill the name table, train or
    refresh the map (under the dock lock). Returns what it did."""
    from .mapping import refresh_or_train  # torch: only when the map is trained or applied

    store = open_store(dock)
    with dock.lock():
        for junk in store.leftovers():
            if junk.is_dir():
                shutil.rmtree(junk, ignore_errors=True)
            else:
                junk.unlink(missing_ok=True)
        records = sync(dock, dock.entries(), run)
        return refresh_or_train(dock, records)
