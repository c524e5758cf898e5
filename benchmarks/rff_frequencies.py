"""How many random Fourier frequencies the RBF pre-filter needs: recall by sketch size.

The pre-filter scores every learnware by ``<R,R> - 2 s_u.s_R`` with ``m`` frequencies and
re-ranks the best exactly; what matters is where the exact top 10 falls in that approximate
order. For the benchmark market (bench_search: K = 100, d = 32, N learnwares) and 10 users
(5 drawn from one learnware, 5 from a 50/50 mix of two), this prints, per ``m``, the worst
approximate rank of any exact top-10 member per user: a re-rank budget above it keeps recall@10
at 1.00 for that user. Sketches of every ``m`` come from one 256-frequency sketch (the first
``m`` frequencies of the same draw). Not part of ``make bench`` (not a bench_ script).

Run: ``python benchmarks/rff_frequencies.py [--n 100000]`` (about 3 minutes at 100,000 on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import report  # noqa: E402
from bench_search import D, market, median_gamma, mixed_user, user_for  # noqa: E402

from lwdock.search import bulk, prefilter  # noqa: E402

SIZES = (16, 32, 64, 128, 256)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    n = ap.parse_args().n
    centres, z, beta, off = market(n)
    sd = z[:200_000].std(axis=0).astype(np.float64)  # the kernel's per-column scale, as the dock's
    zm = (z / sd).astype(np.float32)
    del z
    gamma = median_gamma(zm)
    top = max(SIZES)
    W = prefilter.frequencies(D, gamma, m=top)
    S = prefilter.sketches(zm, beta, off, W)
    selfs = bulk.self_products(zm, beta, off, gamma)
    rng = np.random.default_rng(5)
    users = [user_for(centres, int(j), 100 + i, gamma) for i, j in enumerate(rng.integers(0, n, 5))]
    users += [mixed_user(centres, int(a), int(b), 200 + i, gamma) for i, (a, b) in enumerate(rng.integers(0, n, (5, 2)))]
    worst: dict[int, list[int]] = {m: [] for m in SIZES}
    for u in users:
        uz = u["z"] / sd
        exact = selfs - 2 * bulk.cross_products(zm, beta, off, uz, u["beta"], gamma)
        truth = np.argsort(exact, kind="stable")[:10]
        for m in SIZES:
            Sm = np.concatenate([S[:, :m], S[:, top : top + m]], axis=1) * np.sqrt(top / m)
            approx = selfs - 2 * (Sm @ prefilter.user_sketch(uz, u["beta"], W[:, :m]))
            rank = np.empty(n, dtype=np.int64)
            rank[np.argsort(approx)] = np.arange(n)
            worst[m].append(int(rank[truth].max()))
    rows = [{"N": n, "frequencies": m, "sketch_bytes": 8 * m, "worst_rank_max": max(w), "worst_rank_median":
             float(np.median(w)), "per_user": " ".join(map(str, w))} for m, w in worst.items()]
    report("rff_frequencies", f"Pre-filter frequencies: where the exact top 10 falls (N = {n:,})", rows,
           ["N", "frequencies", "sketch_bytes", "worst_rank_max", "worst_rank_median", "per_user"],
           "Worst approximate rank (0-based) of any exact top-10 member, per user (5 from one learnware, 5 "
           "mixtures of two); a re-rank budget above it keeps that user's recall@10 at 1.00.")


if __name__ == "__main__":
    main()
