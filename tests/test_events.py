"""The Dock announces index changes as typed events; derived data follows them and doctor checks it."""

from __future__ import annotations

import pytest
from _factory import learnware_zip

from lwdock.records import Entry
from lwdock.store.dock import Dock as StoreDock
from lwdock.store.events import DerivedData, DockChanged


def _recording(dock):
    events: list[DockChanged] = []
    dock.subscribe(events.append)
    return events


def test_every_change_is_one_event_with_records_and_the_new_generation(tmp_path):
    dock = StoreDock.init(tmp_path / "dock")
    events = _recording(dock)
    entry = dock.submit(learnware_zip(tmp_path / "a.zip", seed=1), run_model=False)
    assert events == [DockChanged(added=(entry,), removed=(), generation=dock.generation())]
    assert isinstance(events[0].added[0], Entry)
    renamed = dock.set_alias(entry.id, "first")  # a changed entry: removed, then added again
    assert events[-1].added == (renamed,) and events[-1].removed == (entry.id,)
    assert events[-1].added[0].alias == "first"
    dock.remove("first", dry_run=True)
    dock.list()
    assert len(events) == 2  # reads and dry runs announce nothing
    dock.remove("first")
    assert events[-1] == DockChanged(added=(), removed=(entry.id,), generation=dock.generation())
    assert [e.generation for e in events] == [1, 2, 3]


def test_a_listener_that_raises_stops_the_change(tmp_path):
    dock = StoreDock.init(tmp_path / "dock")

    def refuse(event: DockChanged) -> None:
        raise RuntimeError("no")

    dock.subscribe(refuse)
    with pytest.raises(RuntimeError):
        dock.submit(learnware_zip(tmp_path / "a.zip", seed=2), run_model=False)
    assert dock.entries() == [] and dock.generation() == 0
    report = dock.doctor()  # what was written beside the index is garbage, not an inconsistency
    assert report.ok and any("orphan blob" in x for x in report.leftovers)


def test_doctor_checks_and_rebuilds_attached_derived_data(tmp_path):
    dock = StoreDock.init(tmp_path / "dock")
    state = {"seen": [], "stale": False, "rebuilt": 0}

    def rebuild() -> None:
        state["rebuilt"] += 1
        state["stale"] = False

    dock.attach(DerivedData("counter", on_change=state["seen"].append, is_stale=lambda: state["stale"],
                            rebuild=rebuild))
    dock.submit(learnware_zip(tmp_path / "a.zip", seed=3), run_model=False)
    assert len(state["seen"]) == 1
    assert dock.doctor().leftovers == [] and state["rebuilt"] == 0
    state["stale"] = True
    assert dock.doctor(repair=False).leftovers == ["counter is out of date"] and state["rebuilt"] == 0
    report = dock.doctor()
    assert report.ok and report.repaired == ["counter is out of date"] and state["rebuilt"] == 1
    dock.doctor(rebuild_index=True)  # a rebuilt index invalidates everything derived from it
    assert state["rebuilt"] == 2


def test_the_api_dock_keeps_the_search_cache_in_step(tmp_path):
    from lwdock import Dock
    from lwdock.search import cache

    dock = Dock.init(tmp_path / "dock")
    assert [d.name for d in dock.derived] == ["search cache", "summary", "hetero index"]
    entry = dock.submit(learnware_zip(tmp_path / "a.zip", seed=4), run_model=False)
    assert not cache.is_stale(dock)
    bare = StoreDock.open(dock.path)  # the store alone: nothing follows its changes
    bare.remove(entry.id)
    assert cache.is_stale(dock)
    report = Dock.open(dock.path).doctor()
    assert "search cache is out of date" in report.repaired and not cache.is_stale(dock)
