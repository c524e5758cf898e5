"""Keeping the hetero index in step with the dock: the change listener, catch-up, doctor's checks.

The Dock calls :func:`on_change` inside its lock on every change. Every table learnware of a
classification or regression task is *considered*; it is *eligible* when every column is named
(:func:`lwdock.hetero.names.learnware_names`). An eligible learnware's stats are read from the
zip (``hetero_stats.json`` from ``lwdock pack``, else derived from its table RKME) and its
column importance is measured by one model run in the sandbox (``run``, given by
:mod:`lwdock.api`; :mod:`lwdock.hetero.importance`). Nothing that can fail here aborts a submit:
problems are logged and ``lwdock doctor`` repairs them.

The MiniLM name embedder is *not* loaded at submit (about 5 s per process): the name table is
filled by the first search that needs the names, by ``lwdock hetero train`` and by ``doctor``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LwdockError
from ..records import INVALID, USABLE, Entry
from ..spec.specfile import read_dict, spec_from_dict
from .importance import importance_from_outputs, output_matrix, perturbation_batch
from .names import learnware_names, normalise_name
from .stats import STATS_FILE, TableStats, stats_from_json, stats_from_rkme
from .store import FAILED, MODEL, PENDING, UNIFORM, HeteroStore, Record, hetero_dir

logger = logging.getLogger("lwdock")

TASKS = ("classification", "regression")
MIN_LEARNWARES = 20  # the map trains from this many eligible learnwares (docs/heterogeneous.md)
GROWTH = 1.5  # ... and again when eligible learnwares or distinct names grew by 50 %
RunModel = Callable[[Entry, np.ndarray], Any]  # raw model outputs for rows, in the sandbox
ERRORS = (OSError, ValueError, KeyError, LwdockError)  # what a damaged file or a failing model raises


def considered(entry: Entry) -> bool:
    """A table learnware of a reusable task that is not invalid: the index records it."""
    task = (entry.semantic.task or "").lower()
    return entry.status != INVALID and entry.input_kind == "table" and task in TASKS


def open_store(dock: Any) -> HeteroStore:
    return HeteroStore(hetero_dir(dock))


def as_entries(items: Iterable[Any]) -> list[Entry]:
    return [e if isinstance(e, Entry) else Entry.from_dict(e) for e in items]


# -- reading one learnware ------------------------------------------------------------------


def read_learnware(dock: Any, entry: Entry) -> tuple[Record, TableStats | None]:
    """The learnware's record and, when it is eligible, its stats (from its unpacked files)."""
    root = Path(dock.layout.unpacked_dir(entry.id))
    task = (entry.semantic.task or "").lower()
    base = Record(entry.id, False, entry.status, task=task, n_out=int(entry.semantic.output_dim or 1))
    summary = entry.spec("table")
    if summary is None:
        base.reason = "it has no usable table specification"
        return base, None
    packed = None
    packed_file = root / STATS_FILE
    if packed_file.is_file():
        try:
            packed = stats_from_json(packed_file.read_bytes(), f"{entry.short_id}/{STATS_FILE}")
        except LwdockError as exc:
            logger.warning("hetero index: ignoring the packed stats of %s (%s)", entry.short_id, exc)
    spec_doc = read_dict(root / summary.file_name)
    dim = summary.dim
    names = learnware_names(entry.semantic, dim, spec_doc, packed.names if packed is not None else None)
    if names is None:
        base.reason = "its columns are not named (semantic Input.Description or the spec's feature_names)"
        return base, None
    if packed is not None and packed.d == dim:
        stats = TableStats(tuple(names), packed.mean, packed.sd, packed.z, packed.beta, True, packed.num_points)
    else:
        spec = spec_from_dict(spec_doc, str(root / summary.file_name))
        stats = stats_from_rkme(spec.z_, spec.beta_, names, int(getattr(spec, "num_points_", 0) or 0))
    base.eligible, base.names, base.exact = True, list(names), stats.exact
    return base, stats


def measure_importance(entry: Entry, stats: TableStats, task: str, n_out: int,
                       run: RunModel | None) -> tuple[np.ndarray, str, str | None]:
    """(importance, state, note): one model run, or uniform importances and why."""
    uniform = np.ones(stats.d)
    if entry.status != USABLE:
        return uniform, UNIFORM, "the model is not run for a semantic-only learnware"
    if run is None:
        return uniform, PENDING, "measured by the next `lwdock doctor`"
    X = perturbation_batch(stats)
    try:
        out = output_matrix(run(entry, X), X.shape[0], task, n_out)
    except LwdockError as exc:
        logger.warning("hetero index: column importance of %s not measured (%s)", entry.short_id, exc)
        return uniform, FAILED, f"the model run failed: {exc}"
    return importance_from_outputs(out, stats), MODEL, None


def ingest(dock: Any, store: HeteroStore, records: dict[str, Record], entries: Sequence[Entry],
           run: RunModel | None) -> int:
    """Record ``entries`` (new, or changed since they were recorded); returns how many were read."""
    done = 0
    for entry in entries:
        old = records.get(entry.id)
        if old is not None and not _outdated(old, entry, run):
            continue
        try:
            rec, stats = read_learnware(dock, entry)
        except ERRORS as exc:
            logger.warning("hetero index: skipping %s (%s)", entry.short_id, exc)
            continue
        if stats is not None:
            imp, rec.importance, rec.note = measure_importance(entry, stats, rec.task or "", rec.n_out, run)
            rec.imp = [float(v) for v in imp]
            store.write_stats(entry.id, stats, imp)
        else:
            store.drop(entry.id)
        records[entry.id] = rec
        done += 1
    return done


def _outdated(old: Record, entry: Entry, run: RunModel | None) -> bool:
    if old.status != entry.status:
        return True
    return old.eligible and old.importance == PENDING and run is not None and entry.status == USABLE


# -- the listener, catch-up and doctor ------------------------------------------------------------


def on_change(dock: Any, added: Sequence[Any], removed: Sequence[str], run: RunModel | None) -> None:
    """The Dock's change listener (inside its lock). Never aborts the change: logs and returns."""
    new = as_entries(added)
    try:
        store = open_store(dock)
        records = store.read_index()
        keep = {e.id for e in new}
        for lw_id in removed:
            if lw_id not in keep and records.pop(lw_id, None) is not None:
                store.drop(lw_id)
        for e in new:
            if not considered(e) and records.pop(e.id, None) is not None:
                store.drop(e.id)
        changed = ingest(dock, store, records, [e for e in new if considered(e)], run)
        if changed or removed or not store.exists():
            store.write_index(records)
    except ERRORS as exc:
        logger.warning("hetero index update failed (%s); `lwdock doctor` repairs it", exc)


def sync(dock: Any, entries: Sequence[Any], run: RunModel | None = None) -> dict[str, Record]:
    """Bring the index to ``entries`` (call under the dock lock); a damaged index is rebuilt.
    Without ``run`` new learnwares get uniform importances marked pending (search's catch-up)."""
    store = open_store(dock)
    want = {e.id: e for e in as_entries(entries) if considered(e)}
    try:
        records = store.read_index()
    except ERRORS as exc:
        logger.warning("hetero index damaged (%s); rebuilding it", exc)
        store.wipe()
        records = {}
    before = dict(records)
    for lw_id in set(records) - set(want):
        records.pop(lw_id)
        store.drop(lw_id)
    for lw_id, rec in list(records.items()):
        if rec.eligible and not store.stats_file(lw_id).exists():
            records.pop(lw_id)
    ingest(dock, store, records, [want[i] for i in sorted(want)], run)
    if records != before or not store.exists():
        store.write_index(records)
    return records


def catch_up(dock: Any, entries: Sequence[Any]) -> dict[str, Record]:
    """The index for a search (under the dock lock): synced only when it disagrees with the dock."""
    store = open_store(dock)
    want = {e.id for e in as_entries(entries) if considered(e)}
    try:
        records = store.read_index()
        if set(records) == want and store.exists():
            return records
    except ERRORS:
        pass
    return sync(dock, entries)


# -- the retraining rule (no torch: doctor and submit read it cheaply) -----------------------------


def eligible_of(records: Mapping[str, Record]) -> dict[str, Record]:
    return {i: r for i, r in sorted(records.items()) if r.eligible}


def n_names(eligible: Mapping[str, Record]) -> int:
    return len({normalise_name(n) for r in eligible.values() for n in r.names})


def rule_fires(manifest: Mapping[str, Any] | None, eligible: Mapping[str, Record]) -> str | None:
    """Why the map must be (re)trained now, or None."""
    n, names = len(eligible), n_names(eligible)
    if n < MIN_LEARNWARES:
        return None
    if manifest is None:
        return f"the hetero map is due: {n} eligible learnwares and no trained map yet"
    n0, names0 = int(manifest.get("learnwares") or 0), int(manifest.get("names") or 0)
    if n >= GROWTH * n0 or names >= GROWTH * names0:
        return (f"the hetero map is due: eligible learnwares {n0} -> {n}, distinct column names {names0} -> {names} "
                f"since it was trained (retrained at +{GROWTH - 1:.0%})")
    return None


def training_due(manifest: Mapping[str, Any] | None, eligible: Mapping[str, Record], store: HeteroStore) -> str | None:
    """What ``doctor`` reports about the map: due for training, or learnwares not embedded yet."""
    fired = rule_fires(manifest, eligible)
    if fired or manifest is None:
        return fired
    missing = set(eligible) - store.embedded_ids()
    return f"the hetero map has not embedded {len(missing)} learnwares yet" if missing else None
