"""Shards owned by Dask actors against the default in-process threads, on one machine.

A group of N table learnwares (``bench_search``'s market, K = 100, d = 32) bulk-loaded into shards of
``--shard-rows`` learnwares; the same users ranked by :func:`lwdock.search.engine.rank` with the local
threads (``LocalShards``) and with :class:`lwdock.search.dask_shards.DaskShards` on a
``distributed.LocalCluster`` of worker processes (one actor per shard, each opening the group from
the store directory), interleaved; the default pre-filter (the fixed budget at this size) and the
exact pass. Identical candidate ids are checked for every user. On a 2-core machine this measures
the runner's overhead (actor calls, pickled units and answers), not a speed-up: the point of the
actor is a shard on another machine's memory (docs/scaling.md).

Run: ``python benchmarks/bench_dask_shards.py [--n 100000] [--shard-rows 25000]`` (results/dask_shards.*).
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
from lwdock.search.engine import RankOptions, rank  # noqa: E402
from lwdock.search.user import as_user_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--shard-rows", type=int, default=25_000)
    ap.add_argument("--users", type=int, default=6)
    args = ap.parse_args()
    import distributed

    from lwdock.search.dask_shards import DaskShards

    n = args.n
    centres = bs.centres_of(n)
    ids = bs.ids_for(n)

    def chunks():  # type: ignore[no-untyped-def]
        for s, z, beta, off in bs.market_chunks(n, centres=centres, chunk=args.shard_rows):  # a segment per shard
            yield ids[s : s + off.size - 1], z, beta, off

    gamma = bs.median_gamma(next(bs.market_chunks(n, centres=centres))[1])
    users = [as_user_spec(bs.user_for(centres, int(j), int(j), gamma))
             for j in np.random.default_rng(1).integers(n, size=args.users)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        st = store.bulk_load_chunks(tmp, chunks, "float32", shard_rows=args.shard_rows)
        build = time.perf_counter() - t0
        group = st.group(st.keys()[0])
        shards = len(group.shards)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=40) as cluster, distributed.Client(cluster) as client:
            t0 = time.perf_counter()
            runner = DaskShards(client, tmp, group.key, shards)
            start = time.perf_counter() - t0
            for name, opts in (("default pre-filter", RankOptions(k=10)),
                               ("exact pass", RankOptions(k=10, prefilter=False))):
                local, dask, same = [], [], 0
                for u in users:
                    rank(group, u, None, opts, runner=runner)  # warm the actors' page cache and imports
                    t0 = time.perf_counter()
                    a = rank(group, u, None, opts)
                    local.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    b = rank(group, u, None, opts, runner=runner)
                    dask.append(time.perf_counter() - t0)
                    same += a.candidates.ids == b.candidates.ids
                rows.append({"N": n, "shards": shards, "case": name, "local threads s": statistics.median(local),
                             "dask actors s": statistics.median(dask),
                             "dask / local": statistics.median(dask) / statistics.median(local),
                             "identical": f"{same}/{len(users)}"})
                print(rows[-1], flush=True)
    report("dask_shards", "Shards: Dask actors vs in-process threads (one machine)", rows,
           ["N", "shards", "case", "local threads s", "dask actors s", "dask / local", "identical"],
           f"bench_search's market, K=100, d=32, float32, shards of {args.shard_rows:,} (store built in "
           f"{build:.0f} s); LocalCluster of 2 worker processes, 1 thread each, one actor per shard (started in "
           f"{start:.1f} s); median over {len(users)} users, the two runners interleaved, each user once first "
           "through the actors to warm them; 2 shared cores.")


if __name__ == "__main__":
    main()
