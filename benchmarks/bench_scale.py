"""Docks of 1,000 to 1,000,000 learnwares: bulk load, then `list` and `search` end to end.

Each dock holds N table learnwares with varied semantics (task, library, license, scenarios,
names; 30% with an alias), loaded through the documented bulk-load path
(:func:`lwdock.store.bulk.bulk_load`: TinyDB index + the summary, one session). At the sizes in
``--search-sizes`` the dock gets a search store of K = 100 points, d = 32 per learnware
(bench_search's market, generated 50,000 learnwares at a time and written segment by segment,
:func:`lwdock.search.store.bulk_load_chunks`, so 1,000,000 learnwares = 12.8 GB of points never
sit in memory) and statistical search is measured: a cold ``lwdock search --spec`` process, a
warm API ``search``, and recall@10 of the pre-filter (default and other re-rank budgets) against
an exact pass, over 5 users drawn from one learnware and 5 from a 50/50 mix of two.

"old" rows are today's path before the summary, in the same run: `Dock.list` and search over the
records of every TinyDB entry (the store's Dock, which has no summary).
Cold figures are whole processes (`/usr/bin/time -v`: wall, peak RSS), median of 3.

Run alone: ``python benchmarks/bench_scale.py [--sizes 1000,100000,1000000] [--search-sizes 1000,100000]
[--name scale] [--tmp DIR]`` (``make bench`` runs the defaults: all three sizes, about 20-30 minutes
on 2 cores). Statistical search at a million: ``--sizes 100000,1000000 --search-sizes
100000,1000000 --name scale_1m --tmp DIR`` (~15 GB in DIR, about 45 minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import peak_rss_mb, report  # noqa: E402
from bench_search import K, centres_of, market_chunks, median_gamma, mixed_user, user_for  # noqa: E402

from lwdock import Dock  # noqa: E402
from lwdock.api import summary_data  # noqa: E402
from lwdock.records import Entry  # noqa: E402
from lwdock.search import store  # noqa: E402
from lwdock.search.api import search  # noqa: E402
from lwdock.search.engine import RankOptions, rank  # noqa: E402
from lwdock.search.user import as_user_spec  # noqa: E402
from lwdock.store import dock as store_dock  # noqa: E402
from lwdock.store.bulk import bulk_load  # noqa: E402

D = 32
TASKS = ["Classification", "Regression", "Clustering"]
LIBRARIES = ["Scikit-learn", "PyTorch", "Others"]
LICENSES = ["MIT", "Apache-2.0", "BSD", "Others"]
SCENARIOS = ["Business", "Financial", "Health", "Education", "Nature", "Transportation", "Architecture"]
WORDS = ["credit", "risk", "house", "price", "churn", "sales", "forecast", "energy", "traffic", "fraud"]
USERS = 5  # recall users of each kind (one learnware; a 50/50 mixture of two)
RERANKS = (2_000, 5_000, 10_000, 20_000)  # other re-rank budgets whose recall is measured
N_SEMANTICS = 5_000  # distinct semantic specs, shared by reference (keeps a million entries in memory)
LWDOCK = str(Path(sys.executable).parent / "lwdock")
OLD_LIST = ("import sys; from lwdock.store.dock import Dock; from lwdock.search.semantic import SemanticQuery;"
            "q = SemanticQuery.from_filters(task='regression', scenario='health');"
            "print(len(Dock.open(sys.argv[1]).list(q, status='usable')[:20]))")
OLD_SEARCH = ("import sys; from lwdock.store.dock import Dock; from lwdock.search.api import search;"
              "print(search(Dock.open(sys.argv[1]), sys.argv[2], rerank='mmd').ids[0])")


# warm searches are timed at steady state: the first few calls after the first are ~1 ms slower at
# 1,000 learnwares (measured: 10.3, 9.5, 10.2 ms, then 8.4-8.8), so 3 calls warm up, 20 are timed
STEADY = {"runs": 20, "warmup": 3}
# a warm API search in a process that only opened the dock (a service's, not this benchmark's, which
# also holds the market it generated): the same warm-up, then the median of 40
WARM_LOOP = ("import statistics, sys, time; from lwdock import Dock; from lwdock.search.api import search;"
             f"d = Dock.open(sys.argv[1]); [search(d, sys.argv[2], rerank='mmd') for _ in range({STEADY['warmup']})]; ts = []\n"
             "for _ in range(40):\n t = time.perf_counter(); search(d, sys.argv[2], rerank='mmd');"
             " ts.append(time.perf_counter() - t)\n"
             "print(statistics.median(ts))")


def semantics(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(N_SEMANTICS):
        name = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)), replace=False))
        out.append({
            "Data": {"Type": "Class", "Values": ["Table"]},
            "Task": {"Type": "Class", "Values": [TASKS[i % 3]]},
            "Library": {"Type": "Class", "Values": [LIBRARIES[int(rng.integers(3))]]},
            "License": {"Type": "Class", "Values": [LICENSES[int(rng.integers(4))]]},
            "Scenario": {"Type": "Tag", "Values": list(rng.choice(SCENARIOS, size=int(rng.integers(1, 3)),
                                                                   replace=False))},
            "Name": {"Type": "String", "Values": f"{name} {i}"},
            "Description": {"Type": "String", "Values": f"A {name} model ({i}) trained on tabular data."},
            "Input": {"Dimension": D},
        })  # fmt: skip
    return out


def entries(ids: list[str], gamma: float):
    sems = semantics()
    spec = [{"kind": "table", "file_name": "stat.json", "class_name": "RKMETableSpecification", "dim": D,
             "gamma": gamma, "num_points": K}]
    for i, lid in enumerate(ids):
        yield Entry.from_dict({
            "id": lid, "alias": f"lw{i}" if i % 10 < 3 else None, "semantic": sems[i % N_SEMANTICS],
            "status": "usable" if i % 20 else "semantic-only", "check": {}, "specs": spec, "requirements": [],
            "size": 200_000, "created": f"2026-{1 + (i // 100_000) % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00",
        })  # fmt: skip


def build(path: Path, n: int, ids: list[str], gamma: float, centres: np.ndarray | None) -> dict:
    dock = store_dock.Dock.init(path, gamma=gamma)
    dock.attach(summary_data(dock))  # the summary follows the load; the search store is written below
    t0 = time.perf_counter()
    bulk_load(dock, entries(ids, gamma), chunk=n)
    out = {"load_s": time.perf_counter() - t0}
    out["index_mb"] = sum(p.stat().st_size for p in dock.layout.index_dir.rglob("*") if p.is_file()) / 2**20
    out["summary_mb"] = sum(p.stat().st_size for p in dock.layout.summary.rglob("*") if p.is_file()) / 2**20
    if centres is not None:
        t0 = time.perf_counter()

        def chunks():  # the market a chunk at a time: never 12.8 GB in memory at 1,000,000
            for first, z, beta, off in market_chunks(n, centres=centres):
                yield ids[first : first + off.size - 1], z, beta, off

        with dock.lock():
            shutil.rmtree(dock.layout.search, ignore_errors=True)
            store.bulk_load_chunks(dock.layout.search, chunks, dtype="float32", generation=dock.generation())
        out["store_s"] = time.perf_counter() - t0
        out["store_mb"] = sum(p.stat().st_size for p in dock.layout.search.rglob("*") if p.is_file()) / 2**20
        out["build_peak_rss_mb"] = peak_rss_mb()
    return out


def cold(cmd: list[str], runs: int = 3) -> tuple[float, float, str]:
    """Median wall, median peak RSS (MB) and the stdout of ``cmd`` as a whole process."""
    walls, rss, stdout = [], [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        rss.append(int(m.group(1)) / 1024 if m else float("nan"))
        stdout = p.stdout
    return statistics.median(walls), statistics.median(rss), stdout


def warm(fn, runs: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(path: Path, n: int, user: dict | None, work: Path, old: bool) -> list[dict]:
    rows = []

    def row(case: str, **kw) -> None:
        rows.append({"N": n, "case": case, **kw})
        print(json.dumps(rows[-1]), flush=True)

    d = ["--dock", str(path)]
    wall, rss, _ = cold([LWDOCK, *d, "list", "--limit", "20", "--json"])
    row("cold `lwdock list --limit 20`", seconds=wall, peak_mb=rss)
    wall, rss, _ = cold([LWDOCK, *d, "list", "--task", "regression", "--scenario", "health", "--status", "usable",
                         "--limit", "20", "--json"])
    row("cold `lwdock list` 3 filters, limit 20", seconds=wall, peak_mb=rss)
    if old:
        wall, rss, _ = cold([sys.executable, "-c", OLD_LIST, str(path)])
        row("old: cold list 3 filters (every TinyDB entry)", seconds=wall, peak_mb=rss)
    wall, rss, _ = cold([LWDOCK, *d, "search", "--name", "credit risk", "--json"])
    row("cold `lwdock search --name` (semantic only)", seconds=wall, peak_mb=rss)
    dock = Dock.open(path)
    row("warm API `list(limit=20, brief=True)`", seconds=warm(lambda: dock.list(limit=20, brief=True)))
    row("warm API `list(task, scenario, limit=20)`",
        seconds=warm(lambda: dock.list(task="regression", scenario="health", limit=20, brief=True)))
    row("warm API `search(name=...)`", seconds=warm(lambda: search(dock, name="credit risk")))
    if old:
        plain = store_dock.Dock.open(path)
        q = {"task": "regression", "scenario": "health"}
        from lwdock.search.semantic import SemanticQuery

        row("old: warm `list` 3 filters (every TinyDB entry)",
            seconds=warm(lambda: plain.list(SemanticQuery.from_filters(**q), status="usable"), runs=2))
    if user is not None:
        rows += statistical(path, n, user, work, dock, row, old)
    return rows


def write_spec(path: Path, user: dict) -> Path:
    path.write_text(json.dumps({"z": np.asarray(user["z"]).tolist(), "beta": np.asarray(user["beta"]).tolist(),
                                "gamma": user["gamma"], "num_points": K, "type": "RKMETableSpecification"}))
    return path


def top10(group, user: dict, opts: RankOptions) -> tuple[list[str], float]:
    """The best 10 ids by exact MMD^2 from the engine with ``opts``, and the seconds it took."""
    t0 = time.perf_counter()
    c = rank(group, as_user_spec({"z": user["z"], "beta": user["beta"]}), None, opts).candidates
    took = time.perf_counter() - t0
    order = np.argsort(c.mmd2, kind="stable")[:10]
    return [c.ids[i] for i in order], took


def statistical(path: Path, n: int, user: dict, work: Path, dock, row, old: bool) -> list[dict]:
    """Statistical search rows: cold process, warm API, and recall@10 of the default path (and of
    other re-rank budgets) against an exact pass, over 5 users from one learnware and 5 mixtures."""
    spec = write_spec(work / "user.json", user)
    # --rerank mmd: bulk-loaded docks hold no models, so the verified re-rank has nothing to run
    wall, rss, out = cold([LWDOCK, "--dock", str(path), "search", "--spec", str(spec), "--rerank", "mmd", "--json"])
    res = json.loads(out)
    top = res["singles"][0]["id"]
    row("cold `lwdock search --spec --rerank mmd`", seconds=wall, peak_mb=rss, top_ok=top == user["id"],
        prefiltered=res["counts"]["prefiltered"])
    row("warm API `search(spec, rerank=\"mmd\")` (K=100, d=32, mixture; median of 20)",
        seconds=warm(lambda: search(dock, str(spec), rerank="mmd"), **STEADY), peak_mb=peak_rss_mb())
    row("warm API `search(spec, rerank=\"mmd\")`, a process that only opened the dock (median of 40)",
        seconds=float(cold([sys.executable, "-c", WARM_LOOP, str(path), str(spec)], runs=1)[2]))
    far = write_spec(work / "far.json", {**user, "z": np.asarray(user["z"]) + 50.0})  # no learnware near it
    row("warm API `search(spec far from every learnware, rerank=\"mmd\")` (no_match)",
        seconds=warm(lambda: search(dock, str(far), rerank="mmd")))
    if old:
        wall, rss, out = cold([sys.executable, "-c", OLD_SEARCH, str(path), str(spec)])
        row("old: cold search --spec (every TinyDB entry)", seconds=wall, peak_mb=rss, top_ok=out.strip() == top)
    st = store.SegmentStore(dock.layout.search)
    group = st.group(st.keys()[0])
    budgets = [b for b in RERANKS if b < n]
    rec: dict[object, list[float]] = {b: [] for b in ["default", *budgets]}
    times: dict[object, list[float]] = {b: [] for b in rec}
    exact_s = []
    for u in user["recall_users"]:
        truth, took = top10(group, u, RankOptions(k=10, prefilter=False))
        exact_s.append(took)
        for b in rec:
            got, took = top10(group, u, RankOptions(k=10, prefilter=True if b != "default" else None,
                                                    rerank=None if b == "default" else int(b)))
            rec[b].append(len(set(got) & set(truth)) / 10)
            times[b].append(took)
    out = []
    budget = group.backend.budget
    default = ("default (bounded)" if budget.bounded(None, n, getattr(group.backend, "n_frequencies", 0))
               else f"default = {budget.count(10, 20, n)}")
    for b in rec:
        out.append({"N": n, "case": f"recall@10 vs exact, re-rank {default if b == 'default' else b}"
                    f" ({len(rec[b])} users)", "recall": float(np.mean(rec[b])), "min_recall": float(np.min(rec[b])),
                    "seconds": float(np.median(times[b]))})
        print(json.dumps(out[-1]), flush=True)
    out.append({"N": n, "case": f"exact pass (every learnware, {len(exact_s)} users)",
                "seconds": float(np.median(exact_s)), "peak_mb": peak_rss_mb()})
    print(json.dumps(out[-1]), flush=True)
    return out


def the_user(n: int, ids: list[str]) -> dict:
    """The user main() searches with at size n (from learnware n // 3), and the spec files' gamma."""
    centres = centres_of(n)
    gamma = median_gamma(next(market_chunks(n, centres=centres))[1])
    return {**user_for(centres, n // 3, 7, gamma), "id": ids[n // 3]}


def remeasure(path: Path, n: int, name: str) -> None:
    """Cold and warm statistical search again on a dock an earlier run built (after a code change)."""
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    user = the_user(n, ids)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lwdock-scale-") as tmp:
        spec = write_spec(Path(tmp) / "user.json", user)
        wall, rss, out = cold([LWDOCK, "--dock", str(path), "search", "--spec", str(spec), "--rerank", "mmd", "--json"])
        res = json.loads(out)
        rows.append({"N": n, "case": "cold `lwdock search --spec --rerank mmd`", "seconds": wall, "peak_mb": rss,
                     "top_ok": res["singles"][0]["id"] == user["id"]})
        dock = Dock.open(path)
        rows.append({"N": n, "case": "warm API `search(spec, rerank=\"mmd\")` (K=100, d=32, mixture; median of 20)",
                     "seconds": warm(lambda: search(dock, str(spec), rerank="mmd"), **STEADY),
                     "peak_mb": peak_rss_mb()})
        rows.append({"N": n, "case": "warm API `search(spec, rerank=\"mmd\")`, a process that only opened the dock "
                     "(median of 40)", "seconds": float(cold([sys.executable, "-c", WARM_LOOP, str(path), str(spec)],
                                                             runs=1)[2])})
        st = store.SegmentStore(dock.layout.search)
        group = st.group(st.keys()[0])
        truth, took = top10(group, user, RankOptions(k=10, prefilter=False))
        rows.append({"N": n, "case": "exact pass (every learnware, 1 user)", "seconds": took, "peak_mb": peak_rss_mb()})
        got, took = top10(group, user, RankOptions(k=10))
        rows.append({"N": n, "case": "engine with the default pre-filter (1 user)", "seconds": took,
                     "recall": len(set(got) & set(truth)) / 10, "peak_mb": peak_rss_mb()})
    for r in rows:
        print(json.dumps(r), flush=True)
    report(name, f"Scale: statistical search at N = {n:,}, measured again on the same dock", rows,
           ["N", "case", "seconds", "peak_mb", "top_ok", "recall"],
           f"The dock of an earlier `bench_scale.py` run (kept by hard links), measured again after a code change; "
           f"load average {os.getloadavg()}.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--search-sizes", default="1000,100000")
    ap.add_argument("--old-up-to", type=int, default=100_000, help="measure the old path up to this size")
    ap.add_argument("--name", default="scale", help="results file name (benchmarks/results/<name>.json)")
    ap.add_argument("--tmp", default=None, help="where the docks are built (1,000,000 needs ~15 GB)")
    ap.add_argument("--reuse-dock", default=None, help="measure statistical search again on this dock (built by an "
                    "earlier run with the first of --sizes learnwares; kept e.g. by `cp -al`), nothing else")
    args = ap.parse_args()
    if args.reuse_dock:
        remeasure(Path(args.reuse_dock), int(args.sizes.split(",")[0]), args.name)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    search_sizes = {int(s) for s in args.search_sizes.split(",") if s}
    rows, builds = [], []
    load = {"start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="lwdock-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        for n in sizes:
            ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
            with_store = n in search_sizes
            gamma = 0.05
            user = centres = None
            if with_store:
                centres = centres_of(n)
                gamma = median_gamma(next(market_chunks(n, centres=centres))[1])  # the specs' own gamma: provenance
                j = n // 3
                user = {**user_for(centres, j, 7, gamma), "id": ids[j]}
                rng = np.random.default_rng(n)
                user["recall_users"] = (
                    [user_for(centres, int(i), 100 + k, gamma) for k, i in enumerate(rng.integers(0, n, USERS))]
                    + [mixed_user(centres, int(a), int(b), 200 + k, gamma)
                       for k, (a, b) in enumerate(rng.integers(0, n, (USERS, 2)))])
            b = build(work / f"dock{n}", n, ids, gamma, centres)
            builds.append({"N": n, **b})
            print(json.dumps(builds[-1]), flush=True)
            rows += measure(work / f"dock{n}", n, user, work, old=n <= args.old_up_to)
            shutil.rmtree(work / f"dock{n}", ignore_errors=True)
            load[str(n)] = os.getloadavg()
    notes = (
        "Bulk-loaded docks (lwdock.store.bulk), table learnwares with varied semantics; K=100, d=32 where a "
        "search store was loaded. `cold`: a whole process, median of 3 (wall, peak RSS from /usr/bin/time -v); "
        "`warm`: median of 5 calls on one open `lwdock.Dock` (statistical searches: median of 20 after 3 warm-up "
        "calls). `old`: the path before the summary (every TinyDB "
        "entry parsed), same run. 2 shared cores: compare rows of one run.\n\n"
        + "Build: " + "; ".join(f"N={b['N']:,}: load {b['load_s']:.1f} s (index {b['index_mb']:.0f} MB, summary "
                                  f"{b['summary_mb']:.0f} MB)" + (f", search store {b['store_s']:.1f} s"
                                                                   if "store_s" in b else "") for b in builds)
        + ". Search stores: chunked market (benchmarks/bench_search.market_chunks), written segment by segment "
        "(lwdock.search.store.bulk_load_chunks), shards of 250,000. Load average (1/5/15 min) after each size: "
        + json.dumps(load)
    )
    report(args.name, f"Scale: list and search at N = {', '.join(f'{n:,}' for n in sizes)}", rows,
           ["N", "case", "seconds", "peak_mb", "top_ok", "recall", "min_recall"], notes,
           extra={"builds": builds, "load": load})


if __name__ == "__main__":
    main()
