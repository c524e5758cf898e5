"""Team docks: PostgreSQL index vs TinyDB for `list`/`search` at N learnwares (cold processes,
peak memory), and submit throughput into a team dock with 1, 2 and 4 concurrent writers.

A private PostgreSQL server is started as in the tests (tests/_pgserver.py); blobs go to a
shared directory (file://, the code path of s3://). Both docks hold the same bulk-loaded entries
(bench_scale's generator). Submits are real (`Dock.submit(run_model=False)`: zip read, semantic
checks, spec read, blob, manifest, unpacked copy, index row), each writer in its own process on
its own "machine" directory, all started together once every one has imported lwdock and connected.

Statistical search (unless ``--no-stat``): bench_search's market (K=100, d=32) is bulk-loaded into
each dock's local search store; the entries have no zips, so ``lwdock search --spec --rerank mmd``
(no model runs). On the team dock another machine then submits one learnware, and this machine's
first search (which catches its store up from the index) is measured apart from the steady state.

Run alone: ``python benchmarks/bench_team.py [--n 100000] [--submits 20] [--no-stat]`` (the defaults are
the issue's sizes; ``make bench`` runs them: 7-10 minutes and 2.6 GB of disk on 2 cores)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import report  # noqa: E402
from _factory import learnware_zip  # noqa: E402
from _pgserver import PgServer  # noqa: E402
from bench_scale import LWDOCK, cold, entries  # noqa: E402
from bench_search import K, market, median_gamma, user_for  # noqa: E402

from lwdock import Dock  # noqa: E402
from lwdock.api import summary_data  # noqa: E402
from lwdock.search import store as search_store  # noqa: E402
from lwdock.store import dock as store_dock  # noqa: E402
from lwdock.store.bulk import bulk_load  # noqa: E402

WRITER = r"""
import json, os, sys, time
from lwdock import Dock
dock = Dock.open(sys.argv[1])
dock.entries()  # connected, imports done
print("ready", flush=True)
sys.stdin.readline()  # every writer starts at once
t0 = time.time()
for z in json.loads(sys.argv[2]):
    dock.submit(z, run_model=False)
print(t0, time.time(), flush=True)
"""


def throughput(pg: PgServer, work: Path, writers: int, per_writer: int) -> dict:
    url = pg.create_database(f"w{writers}")
    blobs = f"file://{work}/blobs-w{writers}"
    docks = [Dock.init(work / f"w{writers}-m{m}", index=url, blobs=blobs) for m in range(writers)]
    zips = [[str(learnware_zip(work / f"z{writers}-{w}-{i}.zip", seed=10_000 * writers + 100 * w + i))
             for i in range(per_writer)] for w in range(writers)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(docks[w].path), json.dumps(zips[w])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for w in range(writers)]
    for p in procs:  # start-up (interpreter, imports, connection) is not part of the throughput
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    spans = []
    for p in procs:
        out, _ = p.communicate()
        assert p.returncode == 0
        spans.append([float(x) for x in out.split()])
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    assert len(docks[0].entries()) == writers * per_writer
    return {"case": f"team submit, {writers} writer(s)", "N": writers * per_writer, "seconds": wall,
            "per_s": writers * per_writer / wall, "load": load()}


def statistical_store(n: int, ids: list[str]) -> tuple[dict, float, tuple]:
    """bench_search's market of ``n`` learnwares (K=100, d=32): a user near learnware n/3, the
    kernel gamma (median heuristic) and the arrays a search store is bulk-loaded from."""
    centres, z, beta, off = market(n)
    gamma = median_gamma(z)
    j = n // 3 + (n // 3 % 20 == 0)  # a usable one (every 20th entry is semantic-only)
    return {**user_for(centres, j, 7, gamma), "id": ids[j]}, gamma, (z, beta, off)


def write_user(user: dict, path: Path) -> Path:
    path.write_text(json.dumps({"z": np.asarray(user["z"]).tolist(), "beta": np.asarray(user["beta"]).tolist(),
                                "gamma": user["gamma"], "num_points": K, "type": "RKMETableSpecification"}))
    return path


def list_search(pg: PgServer, work: Path, n: int, with_store: bool) -> list[dict]:
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    user, gamma, arrays = statistical_store(n, ids) if with_store else (None, 0.05, None)
    spec = write_user(user, work / "user.json") if user else None
    rows = []

    def row(case: str, **kw) -> None:
        rows.append({"case": case, "N": n, **kw, "load": load()})
        print(json.dumps(rows[-1]), flush=True)

    for kind in ("tinydb", "postgresql"):
        path = work / f"dock-{kind}"
        index = pg.create_database("big") if kind == "postgresql" else None
        blobs = f"file://{work}/bigblobs" if index else None
        # the store's Dock: no search store to follow (these entries have no spec files); a local
        # dock keeps its summary, a team dock filters in SQL
        dock = store_dock.Dock.init(path, gamma=gamma, index=index, blobs=blobs)
        if not index:
            dock.attach(summary_data(dock))
        t0 = time.perf_counter()
        bulk_load(dock, entries(ids, gamma), chunk=n if kind == "tinydb" else 50_000)
        if index:
            dock.backend.conn.execute("VACUUM ANALYZE learnwares")  # index-only scans need the visibility map
        row(f"{kind}: bulk load (index)", seconds=time.perf_counter() - t0)
        if arrays is not None:
            t0 = time.perf_counter()
            shutil.rmtree(dock.layout.search, ignore_errors=True)
            search_store.bulk_load(dock.layout.search, ids, *arrays, dtype="float32", generation=dock.generation())
            row(f"{kind}: bulk load (this machine's search store)", seconds=time.perf_counter() - t0)
        d = ["--dock", str(path)]
        for label, args in (("list --limit 20", ["list", "--limit", "20", "--json"]),
                            ("list 3 filters", ["list", "--task", "regression", "--scenario", "health", "--status",
                                                "usable", "--limit", "20", "--json"]),
                            ("search --name", ["search", "--name", "credit risk", "--json"])):
            wall, rss, _ = cold([LWDOCK, *d, *args])
            row(f"{kind}: cold `lwdock {label}`", seconds=wall, peak_mb=rss)
        if spec is None:
            continue
        stat = [LWDOCK, *d, "search", "--spec", str(spec), "--rerank", "mmd", "--json"]
        if index:
            # another machine submits one learnware: this machine's store is one generation behind,
            # and its next search catches up (reads the index, fetches and reads the new spec)
            other = Dock.init(work / "dock-postgresql-other", index=index, blobs=blobs)
            other.submit(learnware_zip(work / "other.zip", seed=123), run_model=False)
            wall, rss, out = cold(stat, runs=1)
            row(f"{kind}: cold `lwdock search --spec --rerank mmd`, first after another machine's submit "
                f"(catch-up)", seconds=wall, peak_mb=rss, top_ok=json.loads(out)["singles"][0]["id"] == user["id"])
        wall, rss, out = cold(stat)
        row(f"{kind}: cold `lwdock search --spec --rerank mmd` (store current)", seconds=wall, peak_mb=rss,
            top_ok=json.loads(out)["singles"][0]["id"] == user["id"])
        shutil.rmtree(path, ignore_errors=True)  # the store's arrays: 1.3 GB per 100,000
    return rows


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--submits", type=int, default=20, help="submits per writer")
    ap.add_argument("--no-stat", action="store_true", help="no search store, no `search --spec` (saves ~1.3 GB "
                    "of points and a minute per 100,000)")
    ap.add_argument("--name", default="team", help="results file name (benchmarks/results/<name>.json)")
    args = ap.parse_args()
    rows = []
    pg = PgServer()
    try:
        with tempfile.TemporaryDirectory(prefix="lwdock-team-") as tmp:
            work = Path(tmp)
            for writers in (1, 2, 4):
                rows.append(throughput(pg, work, writers, args.submits))
                print(json.dumps(rows[-1]), flush=True)
            rows += list_search(pg, work, args.n, not args.no_stat)
    finally:
        pg.stop()
    notes = ("Private PostgreSQL (durability off, as in the tests), blobs in a shared directory. Submit: real "
             "`submit(run_model=False)` calls, each writer a process with its own dock directory; per_s = all "
             "submits / wall from the first writer's first submit to the last one's end (after every writer "
             "process started, imported lwdock and connected). Cold: a whole `lwdock` process, median of 3 (the "
             "catch-up search: 1 run, it happens once), peak RSS from /usr/bin/time -v. Statistical search: "
             "bench_search's market (K=100, d=32) bulk-loaded into each dock's search store; the entries have no "
             "zips, so `--rerank mmd` (no model runs); top_ok: the learnware the user's data came from ranks first. "
             "`load`: 1/5/15-minute load average after the row, 2 cores shared with other developers: compare rows "
             "of one run.")
    report(args.name, f"Team docks at N = {args.n:,}: PostgreSQL index vs TinyDB, and concurrent submits", rows,
           ["case", "N", "seconds", "per_s", "peak_mb", "top_ok", "load"], notes)


if __name__ == "__main__":
    main()
