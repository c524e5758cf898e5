"""Search through a real Dock: end to end, cache consistency (submit, remove, crashes), CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_search_fixtures import fit, learnware_specs, sample, zip_learnware
from typer.testing import CliRunner

from lwdock.cli import app
from lwdock.errors import ExitCode, SpecFileError
from lwdock.search import api, cache, engine
from lwdock.search.api import search

N = 6


@pytest.fixture(scope="module")
def market():
    return learnware_specs(N, seed=4)


def _dock(tmp_path, market, n=N):
    from lwdock import Dock

    mu, specs = market
    dock = Dock.init(tmp_path / "dock")
    ids = []
    for i in range(n):
        z = zip_learnware(tmp_path / f"lw{i}.zip", specs[i], f"gaussian {i}", scenario=["Nature" if i % 2 else "Business"])
        ids.append(dock.submit(z, run_model=False, alias=f"g{i}").id)
    return dock, ids


def _consistent(dock):
    c = cache.open_store(dock)
    want = set(cache.wanted(dock.entries()))
    return c.generation == dock.generation() and c.live() == want


def test_search_through_dock(tmp_path, market):
    mu, _ = market
    dock, ids = _dock(tmp_path, market)
    assert _consistent(dock)  # kept up to date by the Dock's hook on every submit
    user = fit(sample(mu[2], 400, seed=3))
    res = search(dock, user, include_unchecked=True, k=3)
    assert res.singles[0].id == ids[2] and res.singles[0].alias == "g2"
    # semantic filters restrict the statistical candidates
    res = search(dock, user, include_unchecked=True, scenario="Nature")
    assert ids[2] not in res.ids and len(res.ids) == N // 2
    # unchecked learnwares are hidden by default, with a reason
    res = search(dock, user)
    assert res.empty and "semantic-only" in res.explanation


def test_cache_follows_submit_and_remove(tmp_path, market):
    mu, specs = market
    dock, ids = _dock(tmp_path, market, n=4)
    dock.remove(ids[1])
    assert _consistent(dock)
    user = fit(sample(mu[1], 400, seed=3))
    assert ids[1] not in search(dock, user, include_unchecked=True, k=10).ids
    # re-submitting the same zip brings it back exactly once
    dock.submit(tmp_path / "lw1.zip", run_model=False)
    assert _consistent(dock)
    res = search(dock, user, include_unchecked=True, k=10)
    assert res.ids.count(ids[1]) == 1 and res.ids[0] == ids[1]


def test_crash_before_cache_update_is_caught_up(tmp_path, market, monkeypatch, caplog):
    mu, specs = market
    dock, ids = _dock(tmp_path, market, n=3)
    # the index commits but the process "dies" before the cache hook runs
    monkeypatch.setattr(cache, "on_change", lambda *a, **k: None)
    z = zip_learnware(tmp_path / "late.zip", specs[4], "late")
    late = dock.submit(z, run_model=False).id
    dock.remove(ids[0])
    monkeypatch.undo()
    assert not _consistent(dock) and cache.is_stale(dock)
    res = search(dock, fit(sample(mu[4], 400, seed=1)), include_unchecked=True, k=10)
    assert res.ids[0] == late and ids[0] not in res.ids
    assert "out of date" in caplog.text
    assert _consistent(dock)


def test_crash_after_cache_update_before_index_write(tmp_path, market, monkeypatch):
    mu, specs = market
    dock, ids = _dock(tmp_path, market, n=3)
    real = cache.on_change

    def dies(*a, **k):
        real(*a, **k)
        raise RuntimeError("killed")  # the index session is dropped; the cache already has it

    monkeypatch.setattr(cache, "on_change", dies)
    with pytest.raises(RuntimeError):
        dock.submit(zip_learnware(tmp_path / "ghost.zip", specs[5], "ghost"), run_model=False)
    monkeypatch.undo()
    assert not _consistent(dock)
    res = search(dock, fit(sample(mu[5], 400, seed=1)), include_unchecked=True, k=10)
    assert set(res.ids) == set(ids)  # the ghost never appears
    assert _consistent(dock)


def test_rebuild_and_corrupt_manifest(tmp_path, market):
    dock, ids = _dock(tmp_path, market, n=3)
    (cache.cache_dir(dock) / "manifest.json").write_text("{ truncated")
    assert cache.is_stale(dock)
    assert cache.rebuild(dock) == 3
    assert _consistent(dock) and not cache.is_stale(dock)


def test_damaged_store_files_are_rebuilt_not_fatal(tmp_path, market, caplog):
    mu, specs = market
    dock, ids = _dock(tmp_path, market, n=3)
    seg = next(cache.cache_dir(dock).glob("*/seg-*"))
    (seg / "ids.npy").write_bytes(b"\x93NUMPY garbage")  # a torn write, a bad disk
    dock.submit(zip_learnware(tmp_path / "late.zip", specs[4], "late"), run_model=False)  # the listener logs it
    assert "search store update failed" in caplog.text and cache.is_stale(dock)
    res = search(dock, fit(sample(mu[1], 400, seed=3)), include_unchecked=True, k=10)
    assert "damaged" in caplog.text and res.ids[0] == ids[1] and len(res.ids) == 4
    assert _consistent(dock) and not cache.is_stale(dock)


def test_empty_dock_and_mismatched_dimension_messages(tmp_path, market):
    from lwdock import Dock

    empty = Dock.init(tmp_path / "empty")
    user = fit(sample(np.zeros(4), 200, seed=0))
    assert search(empty, user).explanation == "the dock holds no learnwares"
    dock, _ = _dock(tmp_path, market, n=3)
    other = fit(sample(np.zeros(7), 200, seed=0))
    msg = search(dock, other, include_unchecked=True).explanation
    assert msg.startswith("0 of 3 table learnwares have dimension 7")


def test_corrupt_user_spec_file(tmp_path, market):
    dock, _ = _dock(tmp_path, market, n=2)
    bad = tmp_path / "user.json"
    bad.write_text('{"z": [[1.0, 2.0]], "beta": [1.0], "gam')
    with pytest.raises(SpecFileError, match="not valid JSON"):
        search(dock, bad)


def _cli(dock, *args, glob=()):
    return CliRunner().invoke(app, ["--dock", str(dock.path), *glob, "search", *[str(a) for a in args]])


def test_cli_json_mixture_data_and_fail_if_empty(tmp_path, market):
    mu, _ = market
    dock, ids = _dock(tmp_path, market)
    d = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    a, b = np.unravel_index(np.argmax(d), d.shape)
    X = np.vstack([sample(mu[a], 300, 1), sample(mu[b], 300, 2)])
    data = tmp_path / "user.csv"
    np.savetxt(data, X, delimiter=",")
    r = _cli(dock, "--data", data, "--include-unchecked", "--json", "-k", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["schema"] == "lwdock.search/1" and len(out["singles"]) == 3
    assert set(out["mixture"]["ids"]) == {ids[a], ids[b]}
    assert abs(sum(out["mixture"]["weights"]) - 1) < 1e-9
    # a spec file works the same way; human output is a table on stdout
    spec = tmp_path / "u.json"
    fit(sample(mu[1], 300, 5)).save(spec)
    r = _cli(dock, "--spec", spec, "--include-unchecked")
    assert r.exit_code == 0 and ids[1][:12] in r.stdout.splitlines()[1]
    r = _cli(dock, "--spec", spec, "--fail-if-empty")
    assert r.exit_code == ExitCode.NO_RESULTS and "semantic-only" in r.stderr
    r = _cli(dock, "--name", "gaussian 4", "--include-unchecked", glob=["--quiet"])
    assert r.exit_code == 0 and r.stdout.split() == [ids[4]]
    bad = tmp_path / "bad.json"
    bad.write_text("")
    r = _cli(dock, "--spec", bad)
    assert r.exit_code == ExitCode.BAD_INPUT and "empty" in r.stderr


def test_verified_search_survives_missing_stored_files(tmp_path):
    """A bulk-loaded dock (entries, no zips): the default verified search still answers, by match,
    and says why nothing was verified, instead of failing on the first missing file."""
    from lwdock import Dock
    from lwdock.api import summary_data
    from lwdock.records import Entry
    from lwdock.search import store
    from lwdock.store.bulk import bulk_load

    n, k, d = 30, 20, 4
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(n, d))
    z = (centres[:, None, :] + rng.normal(size=(n, k, d))).reshape(-1, d)
    ids = [f"{i:02x}" + "0" * 62 for i in range(n)]
    dock = Dock.init(tmp_path / "dock")
    dock.attach(summary_data(dock))
    spec = [{"kind": "table", "file_name": "stat.json", "class_name": "RKMETableSpecification", "dim": d,
             "num_points": k}]
    bulk_load(dock, (Entry.from_dict({
        "id": lw, "status": "usable", "check": {}, "specs": spec, "requirements": [], "size": 1,
        "semantic": {"Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Regression"]},
                     "Name": {"Type": "String", "Values": f"lw {i}"}, "Input": {"Dimension": d},
                     "Output": {"Dimension": 1}},
        "created": "2026-11-29T00:00:00+00:00"}) for i, lw in enumerate(ids)))  # fmt: skip
    with dock.lock():
        store.bulk_load(dock.layout.search, ids, z, np.full(n * k, 1 / k), np.arange(n + 1) * k,
                        generation=dock.generation())
    user = {"z": centres[7] + rng.normal(size=(50, d)), "beta": np.full(50, 1 / 50)}
    res = search(dock, user)
    assert res.singles[0].id == ids[7] and not res.singles[0].verified
    assert any("stored files missing" in note for note in res.signals["notes"])


def test_repeated_searches_reuse_the_restriction_only_for_the_same_state_and_filters(tmp_path, market):
    mu, _ = market
    dock, ids = _dock(tmp_path, market)
    user = fit(sample(mu[2], 400, seed=3))
    nature = search(dock, user, include_unchecked=True, scenario="Nature")
    allowed, picks = api._last_allowed[0][3], engine._last_picks[0][2]
    again = search(dock, user, include_unchecked=True, scenario="Nature")
    assert api._last_allowed[0][3] is allowed and engine._last_picks[0][2] is picks  # built once
    assert again.ids == nature.ids and len(nature.ids) == N // 2
    business = search(dock, user, include_unchecked=True, scenario="Business")  # other filters: built again
    assert set(business.ids).isdisjoint(nature.ids) and len(business.ids) == N // 2
    gone = nature.ids[0]
    dock.remove(gone)  # another dock state: built again
    after = search(dock, user, include_unchecked=True, scenario="Nature")
    assert gone not in after.ids and len(after.ids) == N // 2 - 1
    assert engine._last_picks[0][2] is not picks
