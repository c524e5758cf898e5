"""Team docks: a PostgreSQL index (a private server started here) and blobs in a shared fsspec
store (a file:// directory: the same code path as s3://), used by several "machines" (dock
directories with their own caches) and processes at once."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _entries import varied_entries
from _factory import learnware_zip
from lwdock import Dock
from lwdock.search.api import search
from lwdock.search.semantic import SemanticQuery
from lwdock.store import dock as store_dock
from lwdock.store.bulk import bulk_load
from test_summary import FILTERS, STATUS_SETS

pytestmark = pytest.mark.postgres
_names = itertools.count()


# pg and s3_server: the session's private servers (conftest.py)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def team(request, pg, tmp_path, monkeypatch):
    """(index URL, blob URL) of a new, empty team dock: blobs in a shared directory or on S3 (moto)."""
    n = next(_names)
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        server.create_bucket(f"dock{n}")
        blobs = f"s3://dock{n}/team"
    else:
        blobs = f"file://{tmp_path}/shared-blobs"
    return pg.create_database(f"dock{n}"), blobs


def _machine(tmp_path: Path, team, name: str) -> Dock:
    return Dock.init(tmp_path / name, index=team[0], blobs=team[1])


def test_two_machines_share_one_team_dock(tmp_path, team):
    a, b = _machine(tmp_path, team, "a"), _machine(tmp_path, team, "b")
    ids = [a.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=f"model {i}"), run_model=False,
                    alias=f"m{i}").id for i in range(3)]
    assert [e.id for e in b.list()] == [e.id for e in a.list()] and set(ids) == {e.id for e in b.list()}
    assert b.get("m1").id == ids[1]
    b.set_alias("m1", "renamed")
    assert a.get("renamed").id == ids[1]
    b.remove("m2")
    assert {e.id for e in a.list()} == set(ids[:2])
    assert [e.id for e in a.list(name="renamed")] == [ids[1]]
    # b fetches the zip from the shared store (verified by hash) the first time it needs it
    assert (b.unpacked_dir(ids[0]) / "learnware.yaml").is_file()
    assert b.blob_path(ids[0]).read_bytes() == (tmp_path / "0.zip").read_bytes()
    spec = a.spec_path(ids[0])
    assert search(b, spec, include_unchecked=True).ids[0] == ids[0]
    for m in (a, b):
        report = m.doctor(repair=False)
        assert report.ok and report.problems == [], report.to_dict()
    with pytest.raises(Exception, match="alias"):
        a.submit(learnware_zip(tmp_path / "x.zip", seed=9), run_model=False, alias="renamed")
    # the shared store holds exactly the learnwares of the index (the loser's blob was taken back)
    assert sorted({o.lw_id for o in a.blobs.objects()}) == sorted(ids[:2])
    # a still caches the zip b removed: garbage on a, which its doctor tidies
    assert any(ids[2][:12] in msg for msg in a.doctor(repair=False).leftovers)
    assert a.doctor().ok and a.doctor(repair=False).leftovers == []


@pytest.mark.parametrize("filters", FILTERS, ids=[",".join(f) or "none" for f in FILTERS])
def test_sql_filters_equal_the_filter_over_every_entry(pg, tmp_path_factory, filters):
    dock = _sql_market(pg, tmp_path_factory)
    for status in STATUS_SETS:
        query = SemanticQuery.from_filters(**filters) if filters else None
        want = [e.id for e in store_dock.Dock.list(dock, query, status=status)]
        assert [e.id for e in dock.list(status=status, **filters)] == want, status
        assert [e.id for e in dock.list(status=status, limit=20, **filters)] == want[:20]
    if filters:  # semantic search: SQL in index order (best first after a fuzzy stage), its first k
        want = [e.id for e in SemanticQuery.from_filters(**filters).select(dock.entries(status="usable"))]
        assert search(dock, k=25, **filters).ids == want[:25]


_MARKET: dict[str, Dock] = {}


def _sql_market(pg, tmp_path_factory) -> Dock:
    if "dock" not in _MARKET:
        root = tmp_path_factory.mktemp("sql")
        dock = Dock.init(root / "m", index=pg.create_database("market"), blobs=f"file://{root}/blobs")
        bulk_load(dock, varied_entries(2000, seed=3), chunk=700)  # entries only: no blobs, no search store
        entries = dock.entries()
        for e in entries[:40:4]:
            with dock.index() as idx:
                idx.remove(e.id)
        for e in entries[100:130:3]:
            with dock.index() as idx:
                idx.update(e.replace(alias=None if e.alias else f"renamed-{e.id[:6]}"))
        _MARKET["dock"] = dock
    return _MARKET["dock"]


# -- concurrency ------------------------------------------------------------------------------------
WRITER = r"""
import json, sys
from lwdock import Dock
dock = Dock.open(sys.argv[1])
zips = json.loads(sys.argv[2])
done, removed = [], []
for i, z in enumerate(zips):
    e = dock.submit(z, run_model=False)
    done.append(e.id)
    assert e.id in {x.id for x in dock.list()}, "own submit not listed"
    if i % 5 == 4:  # remove one of its own now and then
        dock.remove(done[-2])
        removed.append(done[-2])
    try:
        dock.set_alias(e.id, "contested")
    except Exception:
        pass
print(json.dumps({"done": done, "removed": removed}))
"""


def test_four_writers_on_two_machines_lose_nothing(tmp_path, team):
    machines = [_machine(tmp_path, team, "a"), _machine(tmp_path, team, "b")]
    per_writer = 25
    zips = [[str(learnware_zip(tmp_path / f"w{w}-{i}.zip", seed=1000 * w + i, name=f"w{w} n{i}"))
             for i in range(per_writer)] for w in range(4)]
    import json

    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(machines[w % 2].path), json.dumps(zips[w])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    kept = {i for r in results for i in r["done"]} - {i for r in results for i in r["removed"]}
    assert len({i for r in results for i in r["done"]}) == 4 * per_writer
    for m in machines:
        assert {e.id for e in m.list()} == kept
        assert sum(1 for e in m.list() if e.alias == "contested") == 1
        assert m.doctor(repair=False).ok
    conn = machines[0].backend.conn
    gens = [g for (g,) in conn.execute("SELECT DISTINCT generation FROM changes ORDER BY 1")]
    assert gens == list(range(1, machines[0].generation() + 1))  # in order, without gaps


# -- a killed writer ----------------------------------------------------------------------------------
SUBMIT = "import sys; from lwdock import Dock; Dock.open(sys.argv[1]).submit(sys.argv[2], run_model=False)"


@pytest.mark.parametrize("point", ["submit:after-blob", "change:before-index-write", "submit:after-index"])
def test_killed_writer_leaves_nothing_doctor_cannot_clean(tmp_path, team, point):
    a, b = _machine(tmp_path, team, "a"), _machine(tmp_path, team, "b")
    z = learnware_zip(tmp_path / "k.zip", seed=4)
    generation = a.generation()
    p = subprocess.run([sys.executable, "-c", SUBMIT, str(a.path), str(z)], capture_output=True,
                       env={**os.environ, "LWDOCK_FAULT": point})
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()
    committed = point == "submit:after-index"
    assert len(b.entries()) == int(committed)
    assert b.generation() == generation + int(committed)
    b.doctor()  # the other machine cleans what the dead writer left in the shared store
    after = b.doctor(repair=False)
    assert after.ok and after.leftovers == [], after.to_dict()
    if not committed:
        assert not any(b.blobs.objects())
        assert b.submit(z, run_model=False).id  # and the zip can be submitted again
    assert a.doctor().ok and [e.id for e in a.list()] == [e.id for e in b.list()]


def test_cli_init_submit_list_doctor_on_a_team_dock(tmp_path, team, lwdock_bin):
    import json

    def cli(dock: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([lwdock_bin, "--dock", str(tmp_path / dock), *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})})

    p = cli("a", "init", "--index", team[0], "--blobs", team[1], "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["index"] == team[0]
    p = cli("b", "init", "--json", env={"LWDOCK_INDEX": team[0], "LWDOCK_BLOBS": team[1]})  # env vars work too
    assert p.returncode == 0 and json.loads(p.stdout)["blobs"] == team[1], p.stderr
    z = learnware_zip(tmp_path / "a.zip", seed=1, name="credit scorer")
    assert cli("a", "submit", str(z), "--no-run", "--alias", "credit", "-q").returncode == 0
    listed = json.loads(cli("b", "list", "--json").stdout)
    assert [r["alias"] for r in listed] == ["credit"]
    assert json.loads(cli("b", "doctor", "--json").stdout)["ok"] is True
    # a password in the URL would be written to dock.json: refused with one error line
    bad = team[0].replace("lwdock@", "lwdock:secret@")
    p = cli("c", "init", "--index", bad)
    assert p.returncode != 0 and p.stderr.startswith("error:") and "secret" not in p.stderr + p.stdout
    assert not (tmp_path / "c").exists()


def test_migrate_a_local_dock_into_a_team_dock_and_back(tmp_path, team, lwdock_bin):
    import json

    local = Dock.init(tmp_path / "local")
    ids = [local.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=f"model {i}"), run_model=i % 2 == 0,
                        alias=f"m{i}" if i < 2 else None).id for i in range(4)]
    spec = local.spec_path(ids[0])
    want = search(local, spec, include_unchecked=True, rerank="mmd")  # the stores compared, not the models
    _machine(tmp_path, team, "team")

    def migrate(src: str, dst: str) -> dict:
        p = subprocess.run([lwdock_bin, "--dock", str(tmp_path / src), "migrate", str(tmp_path / dst), "--json"],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert migrate("local", "team") == {"copied": 4, "skipped": 0, "verified": 4}
    assert migrate("local", "team")["skipped"] == 4  # idempotent: a broken-off run is finished by another
    other = _machine(tmp_path, team, "other")  # another machine of the team sees it all
    Dock.init(tmp_path / "back")
    assert migrate("team", "back")["copied"] == 4
    back = Dock.open(tmp_path / "back")
    for d in (other, back):
        assert [(e.id, e.alias, e.status) for e in d.list()] == [(e.id, e.alias, e.status) for e in local.list()]
        assert d.get(ids[0], full=True).check.to_dict() == local.get(ids[0], full=True).check.to_dict()
        got = search(d, spec, include_unchecked=True, rerank="mmd")
        # every learnware is found; the scores may differ: a dock chooses its search kernel from the
        # learnwares it holds, and one built in a bulk load sees them all at once (lwdock.search.kernel)
        assert sorted(got.ids) == sorted(want.ids) and got.singles[0].id == ids[0]
        assert d.doctor(repair=False).ok
    assert (back.blob_path(ids[3]).read_bytes() == local.blob_path(ids[3]).read_bytes())
    p = subprocess.run([lwdock_bin, "--dock", str(tmp_path / "local"), "migrate", str(tmp_path / "nowhere")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("error:")


def test_joining_takes_the_team_gamma_and_refuses_another(tmp_path, team):
    from lwdock.errors import ConflictError

    assert Dock.init(tmp_path / "a", gamma=0.05, index=team[0], blobs=team[1]).settings["gamma"] == 0.05
    assert Dock.init(tmp_path / "b", index=team[0], blobs=team[1]).settings["gamma"] == 0.05
    with pytest.raises(ConflictError, match="gamma is 0.05"):
        Dock.init(tmp_path / "c", gamma=0.2, index=team[0], blobs=team[1])
    assert not (tmp_path / "c").exists()
    assert Dock.init(tmp_path / "local").settings["gamma"] is None  # a local dock records none by default


def test_a_lagging_machine_catches_up_from_the_change_log(tmp_path, team, monkeypatch):
    """Machine b's search store follows a's submits and removes by reading the changed entries only
    (never the whole index), and then ranks exactly as a store rebuilt from the index does."""
    from lwdock.search import cache

    a, b = _machine(tmp_path, team, "a"), _machine(tmp_path, team, "b")
    ids = [a.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=f"model {i}"), run_model=False).id
           for i in range(3)]
    spec = tmp_path / "user.json"
    spec.write_bytes(a.spec_path(ids[1]).read_bytes())  # the user's spec: learnware 1's, which a removes below
    assert search(b, spec, include_unchecked=True, rerank="mmd").ids[0] == ids[1]  # b's store: current
    new = a.submit(learnware_zip(tmp_path / "3.zip", seed=3, name="model 3"), run_model=False).id
    a.remove(ids[1])
    lagging = tmp_path / "lagging-store"
    shutil.copytree(cache.cache_dir(b), lagging)

    def every_entry(*args, **kwargs):
        raise AssertionError("the catch-up read the whole index")

    monkeypatch.setattr(type(b), "entries", every_entry)
    got = search(b, spec, include_unchecked=True, rerank="mmd")
    monkeypatch.undo()
    with b.lock():
        store = cache.open_store(b)
        assert store.generation == b.generation()
        assert {i for _, i in store.live()} == {ids[0], ids[2], new}
    # the same lagging store caught up the old way (every entry read and diffed) ranks the same
    shutil.rmtree(cache.cache_dir(b))
    shutil.copytree(lagging, cache.cache_dir(b))
    monkeypatch.setattr(type(b), "changes_since", lambda self, generation: None)
    want = search(b, spec, include_unchecked=True, rerank="mmd")
    assert got.ids == want.ids and [s.mmd2 for s in got.singles] == [s.mmd2 for s in want.singles]
    assert ids[1] not in got.ids and new in got.ids
