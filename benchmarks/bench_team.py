"""Team docks: PostgreSQL index vs TinyDB for `list`/`search` at N learnwares (cold processes,
peak memory), and submit throughput into a team dock with 1, 2 and 4 concurrent writers.

A private PostgreSQL server is started as in the tests (tests/_pgserver.py); blobs go to a
shared directory (file://, the code path of s3://). Both docks hold the same bulk-loaded entries
(bench_scale's generator). Submits are real (`Dock.submit(run_model=False)`: zip read, semantic
checks, spec read, blob, manifest, unpacked copy, index row), each writer in its own process on
its own "machine" directory.

Run alone: ``python benchmarks/bench_team.py [--n 100000] [--submits 20]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import report  # noqa: E402
from _factory import learnware_zip  # noqa: E402
from _pgserver import PgServer  # noqa: E402
from bench_scale import LWDOCK, cold, entries  # noqa: E402

from lwdock import Dock  # noqa: E402
from lwdock.api import summary_data  # noqa: E402
from lwdock.store import dock as store_dock  # noqa: E402
from lwdock.store.bulk import bulk_load  # noqa: E402

WRITER = r"""
import json, sys, time
from lwdock import Dock
dock = Dock.open(sys.argv[1])
t0 = time.perf_counter()
for z in json.loads(sys.argv[2]):
    dock.submit(z, run_model=False)
print(time.perf_counter() - t0)
"""


def throughput(pg: PgServer, work: Path, writers: int, per_writer: int) -> dict:
    url = pg.create_database(f"w{writers}")
    blobs = f"file://{work}/blobs-w{writers}"
    docks = [Dock.init(work / f"w{writers}-m{m}", index=url, blobs=blobs) for m in range(writers)]
    zips = [[str(learnware_zip(work / f"z{writers}-{w}-{i}.zip", seed=10_000 * writers + 100 * w + i))
             for i in range(per_writer)] for w in range(writers)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(docks[w].path), json.dumps(zips[w])],
                              stdout=subprocess.PIPE, text=True) for w in range(writers)]
    for p in procs:
        p.communicate()
        assert p.returncode == 0
    wall = time.perf_counter() - t0
    assert len(docks[0].entries()) == writers * per_writer
    return {"case": f"team submit, {writers} writer(s)", "N": writers * per_writer, "seconds": wall,
            "per_s": writers * per_writer / wall}


def list_search(pg: PgServer, work: Path, n: int) -> list[dict]:
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    rows = []
    for kind in ("tinydb", "postgresql"):
        path = work / f"dock-{kind}"
        index = pg.create_database("big") if kind == "postgresql" else None
        # the store's Dock: no search store to follow (these entries have no spec files); a local
        # dock keeps its summary, a team dock filters in SQL
        dock = store_dock.Dock.init(path, gamma=0.05, index=index, blobs=f"file://{work}/bigblobs" if index else None)
        if not index:
            dock.attach(summary_data(dock))
        t0 = time.perf_counter()
        bulk_load(dock, entries(ids, 0.05), chunk=n if kind == "tinydb" else 50_000)
        if index:
            dock.backend.conn.execute("VACUUM ANALYZE learnwares")  # index-only scans need the visibility map
        rows.append({"case": f"{kind}: bulk load", "N": n, "seconds": time.perf_counter() - t0})
        d = ["--dock", str(path)]
        for label, args in (("list --limit 20", ["list", "--limit", "20", "--json"]),
                            ("list 3 filters", ["list", "--task", "regression", "--scenario", "health", "--status",
                                                "usable", "--limit", "20", "--json"]),
                            ("search --name", ["search", "--name", "credit risk", "--json"])):
            wall, rss, _ = cold([LWDOCK, *d, *args])
            rows.append({"case": f"{kind}: cold `lwdock {label}`", "N": n, "seconds": wall, "peak_mb": rss})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--submits", type=int, default=20, help="submits per writer")
    args = ap.parse_args()
    rows = []
    pg = PgServer()
    try:
        with tempfile.TemporaryDirectory(prefix="lwdock-team-") as tmp:
            work = Path(tmp)
            for writers in (1, 2, 4):
                rows.append(throughput(pg, work, writers, args.submits))
                print(json.dumps(rows[-1]), flush=True)
            rows += list_search(pg, work, args.n)
    finally:
        pg.stop()
    notes = ("Private PostgreSQL (durability off, as in the tests), blobs in a shared directory. Submit: real "
             "`submit(run_model=False)` calls, each writer a process with its own dock directory; per_s = all "
             "submits / wall. Cold: a whole `lwdock` process, median of 3, peak RSS from /usr/bin/time -v. "
             "2 shared cores: compare rows of one run.")
    report("team", "Team docks: PostgreSQL index vs TinyDB, and concurrent submits", rows,
           ["case", "N", "seconds", "per_s", "peak_mb"], notes)


if __name__ == "__main__":
    main()
