"""Store benchmarks: `lwdock --help` start-up, submit latency into a 10,000-entry dock, and the
search store's own write of one submit and one remove in a group of 300,000 learnwares.

Run alone: python benchmarks/bench_store.py
"""

from __future__ import annotations

import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import report  # noqa: E402

N_EXISTING = 10_000
N_SUBMITS = 20


def _median_wall(cmd: list[str], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_help() -> list[dict]:
    exe = str(Path(sys.executable).parent / "lwdock")
    base = _median_wall([sys.executable, "-c", "pass"])
    helpt = _median_wall([exe, "--help"])
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys; from lwdock.cli import app; "
         "print(','.join(m for m in ('numpy','torch','tinydb','scipy','sklearn') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return [
        {"case": "python -c pass", "seconds": base, "vs_python": 0.0, "goal": "-", "note": ""},
        {
            "case": "lwdock --help",
            "seconds": helpt,
            "vs_python": helpt - base,
            "goal": "<= 0.25 s above python",
            "note": f"heavy modules imported: {heavy or 'none'}",
        },
    ]


def bench_submit() -> list[dict]:
    from _factory import learnware_zip

    from lwdock import Dock
    from lwdock.store.index import index_entry, open_index

    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        dock = Dock.init(tmp / "dock")
        # one real entry, cloned 10,000 times with distinct ids (bulk-load path; no blobs needed)
        template = index_entry(dock.submit(learnware_zip(tmp / "seed.zip", seed=0), run_model=False))
        entries = []
        for i in range(N_EXISTING):
            e = copy.deepcopy(template)
            e["id"] = f"{i:064x}"
            entries.append(e)
        with dock.lock(), open_index(dock.layout.index_dir) as idx:
            idx.replace_all(entries)
        size_mb = sum(f.stat().st_size for f in dock.layout.index_dir.glob('*.json')) / 1e6
        zips = [learnware_zip(tmp / f"z{i}.zip", seed=i + 1) for i in range(N_SUBMITS)]
        times = []
        for z in zips[: N_SUBMITS // 2]:
            t0 = time.perf_counter()
            dock.submit(z, run_model=False)
            times.append(time.perf_counter() - t0)
        rows.append({
            "case": f"submit via API, {N_EXISTING:,} entries ({size_mb:.1f} MB index)",
            "median_s": statistics.median(times), "max_s": max(times), "goal": "<= 0.2 s",
        })  # fmt: skip
        exe = str(Path(sys.executable).parent / "lwdock")
        times = []
        for z in zips[N_SUBMITS // 2 :]:
            t0 = time.perf_counter()
            subprocess.run([exe, "--dock", str(dock.path), "submit", "--no-run", "-q", str(z)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            times.append(time.perf_counter() - t0)
        rows.append({
            "case": f"`lwdock submit --no-run` process, {N_EXISTING:,} entries",
            "median_s": statistics.median(times), "max_s": max(times), "goal": "(includes start-up)",
        })  # fmt: skip
        t0 = time.perf_counter()
        n = len(dock.entries())
        rows.append({"case": f"read the whole index ({n:,} entries)", "median_s": time.perf_counter() - t0,
                     "max_s": None, "goal": "-"})  # fmt: skip
    return rows


def bench_group_apply(n: int = 300_000, k: int = 4, d: int = 4, runs: int = 5) -> list[dict]:
    """`SegmentStore.apply` of one added and of one removed learnware in a bulk-loaded group of ``n``
    (a store opened afresh each time, as a submitting process does: the group's key index included)."""
    import numpy as np

    from lwdock.search import store

    rng = np.random.default_rng(0)
    ids = [f"{i:064x}" for i in range(n)]
    z, beta = rng.normal(size=(n * k, d)), np.full(n * k, 1.0 / k)

    def chunks():  # type: ignore[no-untyped-def]
        for a in range(0, n, 50_000):
            b = min(n, a + 50_000)
            yield ids[a:b], z[a * k : b * k], beta[a * k : b * k], np.arange(b - a + 1) * k

    add_s, remove_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        st = store.bulk_load_chunks(tmp, chunks, "float32")
        profile = st.group(st.keys()[0]).profile
        for r in range(runs):
            s = store.SegmentStore(tmp)
            t0 = time.perf_counter()
            s.apply([store.Item(f"{n + r:064x}", profile, rng.normal(size=(k, d)), np.full(k, 1.0 / k))], [], 2 * r + 1)
            add_s.append(time.perf_counter() - t0)
            s = store.SegmentStore(tmp)
            t0 = time.perf_counter()
            s.apply([], [ids[r]], 2 * r + 2)
            remove_s.append(time.perf_counter() - t0)
    return [{"case": f"search store: one submit into a group of {n:,}", "median_s": statistics.median(add_s),
             "max_s": max(add_s)},
            {"case": f"search store: one remove from a group of {n:,}", "median_s": statistics.median(remove_s),
             "max_s": max(remove_s)}]


def main() -> None:
    report("store_help", "Start-up: `lwdock --help`", bench_help(), ["case", "seconds", "vs_python", "goal", "note"],
           notes="Median wall time of 15 runs each, same machine, same run.")  # fmt: skip
    report("store_submit", "Submit latency into a large dock (no model run)", bench_submit(),
           ["case", "median_s", "max_s", "goal"],
           notes="The 10,000 existing entries are clones of a real entry written straight into the index. "
                 "Submit = hash, safe unpack, semantic + file + spec checks, blob/manifest/cache writes, "
                 "under the dock lock, one read and one atomic rewrite of the small meta file and of one of the 256 index shards.")  # fmt: skip
    report("store_group_apply", "Search store: one submit / remove in a large group", bench_group_apply(),
           ["case", "median_s", "max_s"],
           notes="`SegmentStore.apply` alone (no index, no spec checks), table learnwares of K=4 points in d=4, a "
                 "store object opened afresh per write; median and max of 5.")  # fmt: skip


if __name__ == "__main__":
    main()
