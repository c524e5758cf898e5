"""The summary (lwdock.store.summary) never disagrees with the index, and `list`/`search` through it
select exactly what the straightforward filter over every index entry selects."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from _entries import varied_entries
from _factory import learnware_zip
from lwdock import Dock
from lwdock.errors import ConflictError
from lwdock.search.api import search
from lwdock.search.semantic import SemanticQuery
from lwdock.store import dock as store_dock
from lwdock.store import summary
from lwdock.store.bulk import bulk_load

FILTERS = [
    {},
    {"data_type": "table"},
    {"data_type": ["Image", "TEXT"], "task": "regression"},
    {"library": "scikit-learn", "license": ["MIT", "bsd"]},
    {"scenario": ["Health", "nature"]},
    {"scenario": "Financial", "task": ["Classification"], "data_type": "Table"},
    {"name": "credit"},
    {"name": "CREDIT risk"},
    {"name": "lw-1"},  # aliases count
    {"name": "crdit rsk"},  # nothing contains it: the fuzzy fallback
    {"name": "house", "scenario": "Business", "license": "Apache-2.0"},
    {"description_like": "number 17"},
    {"description_like": "étude"},
    {"ids": ["lw-12", "lw-13"]},
    {"library": "nothing-like-it"},
]
STATUS_SETS = [None, "usable", ["semantic-only", "invalid"]]


def _reference(dock: Dock, filters: dict, status=None) -> list[str]:
    """Today's rule, straight over every index entry (no summary)."""
    query = SemanticQuery.from_filters(**filters) if filters else None
    return [e.id for e in store_dock.Dock.list(dock, query, status=status)]


def _assert_summary_agrees(dock: Dock) -> None:
    assert summary.problems(dock) == []
    for filters in FILTERS[:9]:
        assert [e.id for e in dock.list(**filters)] == _reference(dock, filters), filters


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """2,000 learnwares with varied semantics, bulk-loaded in 3 chunks, then changed a little."""
    logging.getLogger("lwdock").setLevel(logging.ERROR)  # the search store skips the specless entries
    dock = Dock.init(tmp_path_factory.mktemp("summary") / "dock")
    assert bulk_load(dock, varied_entries(2000, seed=3), chunk=700) == 2000
    entries = dock.entries()
    for e in entries[:40:4]:
        dock.remove(e.id)
    for e in entries[100:130:3]:
        dock.set_alias(e.id, None if e.alias else f"renamed-{e.id[:6]}")
    logging.getLogger("lwdock").setLevel(logging.NOTSET)
    return dock


@pytest.mark.parametrize("filters", FILTERS, ids=[",".join(f) or "none" for f in FILTERS])
def test_list_filters_equal_the_filter_over_every_entry(market, filters):
    for status in STATUS_SETS:
        want = _reference(market, filters, status)
        got = market.list(status=status, **filters)
        assert [e.id for e in got] == want, status
        assert [e.id for e in market.list(status=status, limit=20, brief=True, **filters)] == want[:20]
    assert len(market.list()) == 2000 - 10


def test_brief_rows_carry_the_index_fields(market):
    full = {e.id: e for e in market.entries()}
    briefs = market.list(brief=True)
    assert len(briefs) == len(full)
    for b in briefs:
        e = full[b.id]
        assert (b.alias, b.status, b.created, b.semantic.name) == (e.alias, e.status, e.created, e.semantic.name)
        for key in ("Data", "Task", "Library", "License", "Scenario"):
            assert b.semantic.value(key) == e.semantic.value(key), key
        assert [s.kind for s in b.specs] == [s.kind for s in e.specs]
        assert [s.dim for s in b.specs[:1]] == [s.dim for s in e.specs[:1]]


@pytest.mark.parametrize("filters", [f for f in FILTERS if f], ids=[",".join(f) for f in FILTERS if f])
def test_semantic_search_selects_what_list_selects(market, filters):
    query = SemanticQuery.from_filters(**filters)
    # index order (best first after a fuzzy stage), every status but invalid
    want = [e.id for e in query.select(market.entries(status=["usable", "semantic-only"]))]
    assert search(market, include_unchecked=True, k=5000, **filters).ids == want
    assert search(market, k=5000, **filters).ids == [i for i in want if market.get(i).status == "usable"]


def test_bulk_load_refuses_taken_ids_and_aliases_and_writes_nothing(tmp_path):
    dock = Dock.init(tmp_path / "dock")
    first = list(varied_entries(30, seed=5))
    bulk_load(dock, first)
    generation = dock.generation()
    again = list(varied_entries(5, seed=5, start=100)) + [first[0]]
    with pytest.raises(ConflictError, match="already in the dock"):
        bulk_load(dock, again)
    taken = next(e for e in first if e.alias)
    clash = next(varied_entries(1, seed=6)).replace(alias=taken.alias)
    with pytest.raises(ConflictError, match="alias"):
        bulk_load(dock, [clash])
    twice = list(varied_entries(2, seed=7))
    with pytest.raises(ConflictError):
        bulk_load(dock, [twice[0], twice[1], twice[0]])
    assert dock.generation() == generation
    assert sorted(e.id for e in dock.list()) == sorted(e.id for e in first)
    assert summary.problems(dock) == []


def test_summary_follows_submit_alias_and_remove(dock, tmp_path):
    ids = []
    for i in range(6):
        ids.append(dock.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=f"model {i}"), run_model=False,
                               alias=f"m{i}" if i % 2 else None).id)
        _assert_summary_agrees(dock)
    dock.set_alias(ids[0], "first")
    dock.set_alias(ids[1], None)
    _assert_summary_agrees(dock)
    assert [e.id for e in dock.list(name="first")] == [ids[0]]
    dock.remove(ids[2])
    dock.remove("m3")
    _assert_summary_agrees(dock)
    assert {e.id for e in dock.list()} == set(ids) - {ids[2], ids[3]}


def test_many_changes_roll_the_delta_into_a_new_base(tmp_path, monkeypatch):
    monkeypatch.setattr(summary, "MAX_DELTA", 16)
    dock = Dock.init(tmp_path / "dock")
    entries = list(varied_entries(60, seed=8))
    for e in entries[:40]:  # one change each
        bulk_load(dock, [e])
    bases = {summary.open_summary(dock).meta["base"]}
    for e in entries[40:]:
        bulk_load(dock, [e])
        dock.set_alias(e.id, f"a-{e.id[:8]}")
        bases.add(summary.open_summary(dock).meta["base"])
    assert len(bases) > 1
    _assert_summary_agrees(dock)
    assert len(list((dock.layout.summary).iterdir())) == 2  # summary.json and the one base in use


# -- crash tests (fault_point, as tests/test_crash.py) ----------------------------------------------
CHANGES = {
    "submit": "d.submit(sys.argv[3], run_model=False)",
    "remove": "d.remove(sys.argv[3])",
    "alias": "d.set_alias(sys.argv[3], 'killed')",
}


def _killed(dock: Dock, change: str, arg: str) -> None:
    code = f"import sys; from lwdock import Dock; d = Dock.open(sys.argv[1]); {CHANGES[change]}"
    env = {**os.environ, "LWDOCK_FAULT": "change:before-index-write"}
    p = subprocess.run([sys.executable, "-c", code, str(dock.path), "unused", arg], env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()


@pytest.mark.parametrize("change", ["submit", "remove", "alias"])
def test_kill_between_summary_and_index_writes(dock, tmp_path, change):
    ids = [dock.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=f"model {i}"), run_model=False).id
           for i in range(3)]
    generation = dock.generation()
    arg = str(learnware_zip(tmp_path / "new.zip", seed=9, name="killed model")) if change == "submit" else ids[1]
    _killed(dock, change, arg)
    # the summary went ahead of the index; the index is unchanged
    assert summary.open_summary(dock).generation == generation + 1
    assert dock.generation() == generation
    assert "summary is out of date" in dock.doctor(repair=False).leftovers  # doctor sees the stale summary
    # a reader never uses it: list and search show the index's state
    assert sorted(e.id for e in dock.list()) == sorted(ids)
    assert dock.list(name="killed") == []
    assert sorted(search(dock, include_unchecked=True, name="model").ids) == sorted(ids)
    assert summary.problems(dock) == []  # caught up by the reader
    _killed(dock, change, arg)
    report = dock.doctor()
    assert report.ok
    after = dock.doctor(repair=False)
    assert after.ok and after.problems == after.leftovers == []
    _assert_summary_agrees(dock)


def test_damaged_summary_is_rebuilt(dock, tmp_path):
    ids = [dock.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i), run_model=False).id for i in range(3)]
    assert summary.rebuild(dock) == 3  # a small dock's rows live in the delta; now in a base
    base = dock.layout.summary / summary.open_summary(dock).meta["base"]
    (base / "status.npy").write_bytes(b"not numpy")
    assert sorted(e.id for e in dock.list()) == sorted(ids)
    (dock.layout.summary / summary.META).write_text("{")
    assert "summary is out of date" in dock.doctor(repair=False).leftovers
    assert dock.doctor().ok
    _assert_summary_agrees(dock)


def test_cli_list_limit_shows_the_newest(market, lwdock_bin):
    import json

    p = subprocess.run([lwdock_bin, "--dock", str(market.path), "list", "--limit", "3", "--status", "usable",
                        "--task", "Regression", "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    want = _reference(market, {"task": "Regression"}, "usable")[:3]
    assert [r["id"] for r in json.loads(p.stdout)] == want
    p = subprocess.run([lwdock_bin, "--dock", str(market.path), "list", "-n", "-1"], capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("error:") and "limit" in p.stderr


def test_id_lookup_equals_a_search_of_the_sorted_ids(market):
    # the summary's binary search through its by-id order answers as np.searchsorted over the
    # sorted ids would (present, absent, empty and past-the-end ids), without sorting them
    with market.lock():
        view = market.rows(market.generation())
    ids, by_id = view._arr("ids"), view._arr("by_id")
    rng = np.random.default_rng(5)
    present = ids[rng.integers(0, view.n_base, 40)].astype("S64")
    absent = np.array([bytes(i)[:9] + b"~" for i in present[:15]] + [b"", b"0", b"\xff" * 64], dtype="S64")
    want = np.concatenate([present, absent])
    assert np.array_equal(view._search_sorted_ids(want), np.searchsorted(ids[by_id], want))
    found = view._positions_of_ids([bytes(i).decode() for i in present] + ["not-an-id"])
    assert sorted(found.tolist()) == sorted({int(by_id[np.searchsorted(ids[by_id], i)]) for i in present})
    prefix = bytes(present[0])[:3].decode()
    assert sorted(view.ids_with_prefix(prefix).tolist()) == [
        p for p in range(view.n_base) if bytes(ids[p]).startswith(prefix.encode())] + [
        view.n_base + i for i, r in enumerate(view.delta) if r["id"].startswith(prefix)]
