"""A market build (issue 19): N real learnwares submitted with model checks into fresh docks,
`lwdock submit DIR --executor local` vs `--executor dask` (a Dask local cluster of 2 workers), same run.

The learnwares are bench_batch's: a LogisticRegression each on its own data, with its own
RKME table spec (K=10, d=8) and semantic spec, every check run (the model in its sandboxed
worker). Each build is one whole `lwdock submit` process into a new dock directory, so it pays
what a user's build pays: the learnware environment, the fork server (one per process that
runs checks: lwdock's for local threads, each Dask worker's for dask), and for dask the
cluster's start. At the end both docks must hold the same ids with the same statuses and the
same spec bytes (the stored `stat.json` of each learnware).

Run alone: ``python benchmarks/bench_market_build.py [--n 2000] [--jobs 2] [--order local,dask] [--name NAME]``
(``make bench`` runs the defaults, the issue's size: about 9 minutes on 2 shared cores, 3 of them making
the zips; ``--n 200`` for a quick look).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import report  # noqa: E402
from bench_batch import make_zips  # noqa: E402

LWDOCK = str(Path(sys.executable).parent / "lwdock")


def build(dock: Path, zips: Path, executor: str, jobs: int) -> dict:
    """One `lwdock submit` of every zip in ``zips`` into a new dock; wall time and what it stored."""
    env = {**os.environ, "LWDOCK_NO_PROGRESS": "1"}
    env.pop("DASK_SCHEDULER_ADDRESS", None)  # a local cluster of `jobs` workers
    subprocess.run([LWDOCK, "--dock", str(dock), "init"], check=True, capture_output=True, env=env)
    before = os.getloadavg()
    t0 = time.perf_counter()
    p = subprocess.run([LWDOCK, "--dock", str(dock), "submit", str(zips), "--executor", executor, "--jobs", str(jobs),
                        "--json"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = os.getloadavg()
    if p.returncode != 0:
        raise SystemExit(f"{executor} build failed ({p.returncode}): {p.stderr[-2000:]}")
    results = json.loads(p.stdout)
    return {"wall": wall, "results": results, "load": f"{before[0]:.1f} -> {after[0]:.1f}"}


def contents(dock: Path) -> dict[str, tuple[str, str]]:
    """id -> (status, sha256 of every stored spec file's bytes), read through the CLI and the dock's copies."""
    p = subprocess.run([LWDOCK, "--dock", str(dock), "list", "--json", "--limit", "1000000"], check=True,
                       capture_output=True, text=True)
    out = {}
    for e in json.loads(p.stdout):
        root = dock / "unpacked" / e["id"]
        specs = sorted(root.rglob("stat.json")) if root.exists() else []
        digest = hashlib.sha256(b"".join(s.read_bytes() for s in specs)).hexdigest() if specs else ""
        out[e["id"]] = (e["status"], digest)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="learnwares in the market")
    ap.add_argument("--jobs", type=int, default=2, help="local threads / Dask workers")
    ap.add_argument("--order", default="local,dask", help="which build runs first")
    ap.add_argument("--name", default="team_market_build", help="results file name")
    args = ap.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lwdock-market-") as t:
        tmp = Path(t)
        t0 = time.perf_counter()
        make_zips(tmp / "zips", args.n)
        print(f"{args.n} zips made in {time.perf_counter() - t0:.1f} s", flush=True)
        built, seen = {}, {}
        for executor in args.order.split(","):
            r = build(tmp / f"dock-{executor}", tmp / "zips", executor, args.jobs)
            built[executor] = r
            seen[executor] = contents(tmp / f"dock-{executor}")
            usable = sum(x.get("status") == "usable" for x in r["results"])
            rows.append({"case": f"market build, `lwdock submit DIR --executor {executor} --jobs {args.jobs}`",
                         "N": args.n, "seconds": r["wall"], "per_s": args.n / r["wall"], "usable": usable,
                         "load": r["load"]})
            print(json.dumps(rows[-1]), flush=True)
        local, dask = seen["local"], seen["dask"]
        same = local == dask and len(local) == args.n
        ratio = built["dask"]["wall"] / built["local"]["wall"]
        rows.append({"case": "dask / local wall time", "N": args.n, "ratio": ratio,
                     "same_ids_statuses_specs": same})
        print(json.dumps(rows[-1]), flush=True)
        if not same:
            raise SystemExit("the two docks differ")
    notes = (f"Real learnwares (LogisticRegression, RKME table spec K=10 d=8), every check run including the model "
             f"in its sandbox; each build is one cold `lwdock submit` process into a fresh dock (environment, fork "
             f"server(s) and, for dask, a local cluster of {args.jobs} worker processes included). `load`: 1-minute "
             f"load average before -> after the build, on 2 cores shared with other developers. The last row: "
             f"both docks hold the same ids, statuses and spec bytes.")
    report(args.name, f"Market build of {args.n} learnwares: local threads vs Dask local cluster", rows,
           ["case", "N", "seconds", "per_s", "usable", "load", "ratio", "same_ids_statuses_specs"], notes)


if __name__ == "__main__":
    main()
