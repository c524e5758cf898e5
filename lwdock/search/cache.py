"""Keeping the search store in step with a dock: the change listener, catch-up, doctor's checks.

The Dock calls :func:`on_change` inside its lock on every index change (a submit, a remove, a
status change), for every spec type: the new learnwares' specs are read once and appended as a
small segment (:mod:`lwdock.search.store`). The listener runs *before* the Dock's index session
is written, so the store records the index generation that session will write; if the process
dies in between, the generations disagree and the next search (or ``lwdock doctor``) catches
the store up by diffing ``(kind, id)`` sets (:func:`ensure_current`, :func:`sync`).

For ``lwdock doctor``: :func:`is_stale` (generation, contents or arrays disagree with the index),
:func:`problems` (what exactly) and :func:`rebuild` (throw the store away and rebuild it, all types).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import LwdockError
from ..progress import track
from ..records import Entry
from ..spec import quality
from ..spec.specfile import load_spec
from .store import Item, SegmentStore, check, item_from_spec
from .view import DockView, as_entries, searchable_kinds, setting, spec_file

logger = logging.getLogger("lwdock")

PROGRESS_FROM = 20  # show progress when reading this many specs at once
# what reading or writing the store's files can raise when they are damaged or the disk fails
STORE_ERRORS = (OSError, ValueError)


def cache_dir(dock: DockView) -> Path:
    return Path(dock.layout.search)


def open_store(dock: DockView) -> SegmentStore:
    return SegmentStore(cache_dir(dock), setting(dock, "search_cache_dtype", None))


def wanted(entries: Iterable[Entry]) -> dict[tuple[str, str], Entry]:
    """(kind, id) -> entry for every spec the store should hold."""
    return {(kind, e.id): e for e in entries for kind in searchable_kinds(e)}


def load_items(dock: DockView, pairs: list[tuple[str, Entry]], warn: bool = False
               ) -> tuple[list[Item], list[tuple[str, str]]]:
    """The store items of ``(kind, entry)`` pairs, and the pairs whose spec could not be read;
    ``warn``: say so when a spec is a degenerate summary of its data (new submits)."""
    items, bad = [], []
    shown = track(pairs, len(pairs), "search store") if len(pairs) >= PROGRESS_FROM else pairs
    for kind, entry in shown:
        try:
            spec = load_spec(spec_file(dock, entry, kind))
            item = item_from_spec(entry.id, spec, quality.assess(spec))
            message = quality.warning(spec) if warn else None
            if message:
                logger.warning("learnware %s: %s", entry.short_id, message)
            if item.profile.kind != kind:
                raise LwdockError(f"the index lists a {kind} spec but the file holds a {item.profile.kind} spec")
        except (LwdockError, OSError) as exc:  # a bad or missing spec file must not break the dock's commit
            logger.warning("search store: skipping the %s spec of %s (%s)", kind, entry.short_id, exc)
            bad.append((kind, entry.id))
            continue
        items.append(item)
    return items, bad


def _next_generation(store: SegmentStore, disk: int) -> int | None:
    """The generation the store records for a change the index is about to write (``disk + 1``),
    or None ("unknown": the next search diffs id sets) when the store was already behind."""
    prev = store.generation
    if prev is None and disk == 0 and not store.keys():
        prev = 0  # a fresh dock: nothing to have missed
    if prev == disk:
        return disk + 1
    return disk if prev == disk - 1 else None


def on_change(dock: DockView, added: list[Entry | Mapping[str, Any]], removed: list[str]) -> None:
    """The Dock's change listener (inside its lock): ``added`` entries, ``removed`` ids.

    A status change comes as the same id removed and added: its stored arrays are kept unless it
    became invalid. Unreadable specs are recorded, not raised; a store that cannot be read or
    written (damaged files, disk full, permissions) is logged and caught up by the next search.
    Anything else is a bug and propagates.
    """
    new = as_entries(added)
    try:
        store = open_store(dock)
        both = {e.id for e in new} & set(removed)
        live = store.live() if both else set()
        adds = [(k, e) for e in new for k in searchable_kinds(e) if e.id not in both or (k, e.id) not in live]
        still = {e.id for e in new if searchable_kinds(e)}
        gone = [i for i in removed if i not in both or i not in still]
        items, bad = load_items(dock, adds, warn=True)
        store.apply(items, gone, _next_generation(store, dock.generation()), unreadable=bad)
    except STORE_ERRORS as exc:
        logger.warning("search store update failed (%s); the next search will catch it up", exc)


def sync(dock: DockView, entries: list[Entry]) -> tuple[int, int]:
    """Bring the store to ``entries`` (the index) by diffing (kind, id) sets. Returns (added, removed)."""
    return _apply_diff(dock, open_store(dock), wanted(entries), None, dock.generation())


def _apply_diff(dock: DockView, store: SegmentStore, want: dict[tuple[str, str], Entry], scope: set[str] | None,
                generation: int) -> tuple[int, int]:
    """Make the store hold ``want`` for the ids in ``scope`` (every id when None) and record ``generation``."""
    have = store.live()
    if scope is not None:
        have = {p for p in have if p[1] in scope}
    gone = sorted({i for _, i in have - want.keys()})
    # an id leaves every group at once, so the kinds it keeps are read again
    pairs = (want.keys() - have) | {p for p in want.keys() & have if p[1] in gone}
    add = [(kind, want[(kind, i)]) for kind, i in sorted(pairs)]
    items, bad = load_items(dock, add)
    store.apply(items, gone, generation, unreadable=bad)
    return len(items), len(gone)


def catch_up_from_log(dock: DockView, store: SegmentStore) -> bool:
    """Bring a lagging store up to the index from the index's change log, reading only the changed
    entries (a team dock: another machine submitted or removed). False when the dock keeps no log
    (a local dock, whose store follows every change in-process) or the log cannot say (a reset,
    a store of no generation): the caller diffs the whole index instead."""
    since = getattr(dock, "changes_since", None)
    if since is None or store.generation is None:
        return False
    log = since(int(store.generation))
    if log is None:
        return False
    generation, rows = log
    changed = {lw_id for _, lw_id, _ in rows if lw_id}
    present = as_entries(dock.get_many(sorted(changed))) if changed else []
    # the entries may be newer than `generation`; recording `generation` makes the next search
    # replay those changes, which is harmless (the diff is idempotent)
    _apply_diff(dock, store, wanted(present), changed, generation)
    return True


def rebuild(dock: DockView) -> int:
    """Throw the store away and rebuild it from the index, every spec type (``lwdock doctor``)."""
    with dock.lock():
        shutil.rmtree(cache_dir(dock), ignore_errors=True)
        entries = as_entries(dock.entries())
        store = open_store(dock)
        items, bad = load_items(dock, sorted(((k, e) for (k, _), e in wanted(entries).items()), key=_pair_order))
        store.apply(items, [], dock.generation(), unreadable=bad)
        return len(items)


def _pair_order(pair: tuple[str, Entry]) -> tuple[str, str]:
    return pair[0], pair[1].id


def _disagreement(store: SegmentStore, generation: int, entries: list[Entry]) -> str | None:
    if store.generation != generation:
        return f"search store generation {store.generation} differs from the index's {generation}"
    want, have = set(wanted(entries)), store.live()
    if want != have:
        return f"search store holds {len(have - want)} learnwares the index does not and misses {len(want - have)}"
    return None


def problems(dock: DockView) -> list[str]:
    """Everything that keeps the store from matching the index (empty when it is current)."""
    with dock.lock():
        store = open_store(dock)
        entries = as_entries(dock.entries())
        found = check(store)
        if not found:
            stale = _disagreement(store, dock.generation(), entries)
            found = [stale] if stale else []
        return found


def is_stale(dock: DockView) -> bool:
    """True when the store disagrees with the index or its arrays are damaged (``lwdock doctor``)."""
    return bool(problems(dock))


def ensure_current(dock: DockView, entries: list[Entry] | Callable[[], list[Entry]], key: str | None = None,
                   generation: int | None = None) -> SegmentStore:
    """The store for the index (call under the dock lock); caught up first if it lags, rebuilt if
    its files are damaged. ``entries``: the index's entries, or a function that reads them, called
    only when the store must catch up. ``key``: the group the caller will read, opened here so a
    damaged one is rebuilt. ``generation``: the index's, when the caller read it under the same
    hold of the lock.

    The store follows every change (:func:`on_change`) and records its generation, so at the
    index's generation it is current: comparing the id sets on every search would read the whole
    index (O(N) per search). ``doctor`` compares them (:func:`problems`)."""
    store = open_store(dock)
    try:
        generation = dock.generation() if generation is None else generation
        if store.generation == generation:
            if key is not None:
                store.group(key)
            return store
        if catch_up_from_log(dock, store):
            return open_store(dock)
        index = entries() if callable(entries) else entries
        stale = _disagreement(store, generation, index)
        if stale is None:
            return store
        if store.generation is not None or store.keys():
            logger.warning("search store was out of date (%s); updating it", stale)
        sync(dock, index)
    except STORE_ERRORS as exc:
        logger.warning("search store damaged (%s); rebuilding it", exc)
        shutil.rmtree(cache_dir(dock), ignore_errors=True)
        sync(dock, entries() if callable(entries) else entries)
    return open_store(dock)
