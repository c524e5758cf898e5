"""Search at scale: warm/cold search time, prefilter recall, speed-up over a per-learnware loop.

Docks of N synthetic table learnwares (K=100, d=32): learnware i's RKME is 100 points drawn
from N(c_i, I) with Dirichlet weights, centres c_i ~ N(0, I). The search cache is
bulk-loaded directly (float32 storage, the default). A user is 100 points from one learnware's
distribution. Run alone: ``python benchmarks/bench_search.py [--sizes 1000,10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import peak_rss_mb, report, timed  # noqa: E402

from lwdock.search import bulk, cache  # noqa: E402
from lwdock.search.api import search_cache  # noqa: E402

K, D, GAMMA, SPREAD = 100, 32, 0.1, 1.0
USERS = 5

COLD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from lwdock.search.cache import SearchCache
from lwdock.search.api import search_cache
u = json.load(open(sys.argv[2]))
res = search_cache(SearchCache(sys.argv[1]), u, k=10, prefilter=sys.argv[3] == "1")
print(json.dumps({"seconds": time.perf_counter() - t0, "top": res.ids[0],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def market(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, SPREAD, size=(n, D))
    z = np.empty((n * K, D), dtype=np.float32)
    step = 10_000
    for s in range(0, n, step):
        e = min(n, s + step)
        z[s * K : e * K] = (centres[s:e, None, :] + rng.normal(size=(e - s, K, D))).reshape(-1, D)
    beta = rng.dirichlet(np.full(K, 5.0), size=n).ravel()
    return centres, z, beta, np.arange(n + 1, dtype=np.int64) * K


def user_for(centres: np.ndarray, j: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"z": centres[j] + rng.normal(size=(K, D)), "beta": np.full(K, 1.0 / K), "gamma": GAMMA}


def cold(directory: Path, user: dict, use_pf: bool) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in user.items()}, fh)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD, str(directory), fh.name, "1" if use_pf else "0"],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    wall = time.perf_counter() - t0
    os.unlink(fh.name)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    info["wall"] = wall
    return info


def run_size(n: int, work: Path, rows: list, extra: dict) -> None:
    t0 = time.perf_counter()
    centres, z, beta, off = market(n)
    ids = [f"{i:064x}" for i in range(n)]
    directory = work / f"n{n}"
    c = cache.bulk_load(directory, ids, z, beta, off, GAMMA, dtype="float32")
    build = time.perf_counter() - t0
    rng = np.random.default_rng(n)
    users = [user_for(centres, int(j), 100 + i) for i, j in enumerate(rng.integers(0, n, USERS))]
    search_cache(c, users[0])  # warm the page cache and the loaded group
    t_exact, res = timed(lambda: search_cache(c, users[0], prefilter=False), repeat=3)
    t_single, _ = timed(lambda: search_cache(c, users[0], prefilter=False, max_mixture=1), repeat=3)
    t_pf, _ = timed(lambda: search_cache(c, users[0], prefilter=True), repeat=3)
    recalls = []
    for u in users:
        ex = set(search_cache(c, u, prefilter=False, max_mixture=1).ids)
        ap = set(search_cache(c, u, prefilter=True, max_mixture=1).ids)
        recalls.append(len(ex & ap) / 10)
    row = {
        "N": n, "build_s": build, "warm_exact_s": t_exact, "warm_exact_single_s": t_single,
        "warm_prefilter_s": t_pf, "recall@10": float(np.mean(recalls)),
        "mixture_size": len(res.mixture["ids"]) if res.mixture else 0,
    }
    cx = cold(directory, users[0], use_pf=False)
    row["cold_exact_s"] = cx["wall"]
    row["cold_rss_mb"] = cx["rss_mb"]
    if n >= 100_000:
        cp = cold(directory, users[0], use_pf=True)
        row["cold_prefilter_s"] = cp["wall"]
        row["cold_prefilter_rss_mb"] = cp["rss_mb"]
    if n <= 10_000:
        # the reference's way: one learnware at a time, self products recomputed on every call
        u = users[0]
        zs = [z[off[i] : off[i + 1]].astype(np.float64) for i in range(n)]
        bs = [beta[off[i] : off[i + 1]] for i in range(n)]
        sub = n if n <= 1000 else 1000
        t_loop, loop = timed(lambda: bulk.loop_mmd2(zs[:sub], bs[:sub], u["z"], u["beta"], GAMMA), repeat=1)
        t_loop *= n / sub
        row["loop_s"] = t_loop
        row["speedup_single"] = t_loop / t_single
        if sub == n:
            row["top10_identical"] = list(np.argsort(loop, kind="stable")[:10]) == [int(i, 16) for i in res.ids[:10]]
        # float32 storage vs float64: accuracy of the MMDs
        c64 = cache.bulk_load(work / f"n{n}-f64", ids, z.astype(np.float64), beta, off, GAMMA, dtype="float64")
        r64 = search_cache(c64, u, k=n, prefilter=False, max_mixture=1)
        r32 = search_cache(c, u, k=n, prefilter=False, max_mixture=1)
        a = {s["id"]: s["mmd2"] for s in r64.singles}
        diff = max(abs(a[s["id"]] - s["mmd2"]) for s in r32.singles)
        extra.setdefault("float32", []).append(
            {"N": n, "max_abs_mmd2_diff": diff, "mmd2_range": [min(a.values()), max(a.values())],
             "top10_same": r64.ids[:10] == r32.ids[:10]})
    row["peak_rss_mb"] = peak_rss_mb()
    rows.append(row)
    print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    args = ap.parse_args()
    rows: list = []
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix="lwdock-bench-search-") as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            run_size(n, Path(tmp), rows, extra)
    notes = (
        f"Synthetic table learnwares, K={K}, d={D}, gamma={GAMMA}; cache bulk-loaded, float32 storage. "
        "warm_*: best of 3 in-process `search_cache` calls (single ranking + greedy mixture unless `single`). "
        "cold_*: a fresh Python process that opens the cache and searches (imports included). "
        "loop_s: per-learnware loop recomputing every inner product (the reference's way; extrapolated "
        "from 1,000 learnwares at N=10,000); speedup_single compares it with the bulk single ranking. "
        f"recall@10: prefilter (RFF, 512 frequencies, max(1,000, 2% of N) candidates re-ranked exactly) vs exact, {USERS} users. "
        f"float32 vs float64 storage: {json.dumps(extra.get('float32', []))}"
    )
    cols = ["N", "build_s", "warm_exact_s", "warm_exact_single_s", "warm_prefilter_s", "recall@10", "cold_exact_s",
            "cold_prefilter_s", "cold_rss_mb", "loop_s", "speedup_single", "top10_identical", "peak_rss_mb"]
    report("search", "Search: bulk MMD ranking, greedy mixture, RFF prefilter", rows, cols, notes, extra=extra)


if __name__ == "__main__":
    main()
