"""The table pre-filter (bounded below 20,000 learnwares, a fixed re-rank budget above): recall
and time against the exact pass on markets from well separated to near-identical learnwares.

Market: ``bench_search``'s (N learnwares of K = 100 points in d = 32, N(c_i, I)) with the centres
c_i ~ N(0, spread^2 I); spread 1.0 is bench_search's own market, 0.03 makes every learnware
nearly the same distribution. 20 users per market: 8 drawn from one learnware, 8 from a 50/50
mix of two, 4 from a centre of no learnware. Per user: the default search (pre-filter and check,
``search_cache(store, user)``) against the exact pass (``prefilter=False``), same run,
interleaved; recall@10 of the default against the exact top 10, the median time of each, and
how many learnwares the default computed exactly, and how often the fixed budget's
``prefilter_uncertain`` signal fired. 5,000: the bounded pre-filter (1,024-frequency
sketches, every candidate within 4 standard errors computed); 25,000: above the table backend's
threshold (20,000), the fixed budget.

Run: ``python benchmarks/bench_prefilter.py [--sizes 5000,25000]`` (results/prefilter.{json,md}).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_search as bs  # noqa: E402
from _common import report  # noqa: E402

from lwdock.search import store  # noqa: E402
from lwdock.search.backends import RBFBackend  # noqa: E402
from lwdock.search.api import search_cache  # noqa: E402

SPREADS = (1.0, 0.5, 0.25, 0.1, 0.03)


def users(centres: np.ndarray, spread: float, gamma: float) -> list[dict]:
    rng = np.random.default_rng(5)
    n = len(centres)
    out = [bs.user_for(centres, int(rng.integers(n)), s, gamma) for s in range(8)]
    out += [bs.mixed_user(centres, int(rng.integers(n)), int(rng.integers(n)), s, gamma) for s in range(8)]
    out += [{"z": rng.normal(0, spread, bs.D) + rng.normal(size=(bs.K, bs.D)), "beta": np.full(bs.K, 1 / bs.K),
             "gamma": gamma} for _ in range(4)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5000,25000")
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        for spread in SPREADS:
            bs.SPREAD = spread
            centres, z, beta, off = bs.market(n, seed=1)
            gamma = bs.median_gamma(z)
            with tempfile.TemporaryDirectory() as tmp:
                st = store.bulk_load(tmp, bs.ids_for(n), z, beta, off, dtype="float32")
                rec, t_exact, t_auto, computed, flagged, misses = [], [], [], [], [], []
                for u in users(centres, spread, gamma):
                    t0 = time.perf_counter()
                    exact = search_cache(st, u, max_mixture=1, prefilter=False).ids[:10]
                    t1 = time.perf_counter()
                    found = search_cache(st, u, max_mixture=1)
                    t2 = time.perf_counter()
                    auto = found.ids[:10]
                    computed.append(found.counts["exact"])
                    flagged.append("prefilter_uncertain" in found.signals["flags"])
                    misses.append(found.signals["expected_misses"])
                    t_exact.append(t1 - t0)
                    t_auto.append(t2 - t1)
                    rec.append(len(set(exact) & set(auto)) / 10)
            rows.append({"N": n, "pre-filter": "bounded" if n <= RBFBackend.budget.auto_above else "fixed budget",
                         "spread": spread, "recall@10 mean": float(np.mean(rec)), "recall@10 min": min(rec),
                         "exact products": statistics.median(computed), "exact products max": max(computed),
                         "flagged": f"{sum(flagged)}/{len(flagged)}",
                         "expected misses": None if misses[0] is None else statistics.median(misses),
                         "exact pass s": statistics.median(t_exact), "default s": statistics.median(t_auto),
                         "exact / default": statistics.median(t_exact) / statistics.median(t_auto)})
            print(rows[-1], flush=True)
    notes = ("Default = the table pre-filter. Up to 20,000 learnwares bounded: 1,024-frequency sketches, the best "
             "40 by sketch computed exactly, then every learnware whose sketch, 4 standard errors in its favour, "
             "could still enter the best 20 by MMD^2 or 10 by match. Above: 128-frequency sketches, then the exact "
             "pass over min(N, max(1,000, 50k, pool, min(2 % N, 2,000))) learnwares. `exact products`: learnwares "
             "computed exactly per search (median, max over the users). `flagged`: users whose search raised "
             "`prefilter_uncertain` (the fixed budget's expected misses, median in `expected misses`, >= 0.5). Times: median over the 20 users, the two "
             "paths interleaved; 2 shared cores.")
    report("prefilter", "Table pre-filter: recall and time vs the exact pass, separated to near-identical markets", rows,
           ["N", "pre-filter", "spread", "recall@10 mean", "recall@10 min", "exact products", "exact products max",
            "flagged", "expected misses", "exact pass s", "default s", "exact / default"], notes)


if __name__ == "__main__":
    main()
