"""Search time of this tree against an older lwdock tree, in the same run (issue 12's "within 10 %").

The older tree is a plain checkout (``git archive <commit> | tar -x -C DIR``); each measurement runs
in a fresh worker process whose ``PYTHONPATH`` puts one tree's ``lwdock`` first, alternating old /
new for ``--rounds`` rounds, so both see the same machine load. Nothing of the old implementation
is copied here: the worker calls each tree's own public API.

Workloads (inputs made once, shared through files):

* ``table N``: N synthetic table RKMEs (K=100, d=32, the market of ``bench_search.py``), bulk-loaded;
  warm ``search_cache`` with the greedy mixture, ranking alone, and (N = 100,000) with the pre-filter.
* ``table dock``: a real dock of 1,000 entries; warm ``search(dock, spec)`` end to end (index read,
  semantic filter, cache check, ranking, mixture).
* ``image``: 1,000 synthetic image RKMEs (K=50, 3x32x32, the weight sparsity of fitted specs, as in
  ``bench_paper_image.py``); store built from spec objects; warm search with the default
  pre-filter and exact.
* ``text``: 2,000 synthetic text RKMEs (K=50, 384-d unit vectors, gamma 0.1); warm exact search.

    .venv/bin/python benchmarks/bench_search_compare.py --old-tree /tmp/lwdock-old [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPEAT = 5


def _best(fn, repeat: int = REPEAT) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# -- inputs (made once by the driver) -----------------------------------------------------------
def make_inputs(work: Path) -> None:
    sys.path.insert(0, str(HERE))
    from bench_search import market, median_gamma, user_for
    from bench_spec_image_text import blobs

    from lwdock.spec.rkme_image import RKMEImageSpec

    gamma = median_gamma(market(1000)[1])
    (work / "gamma.json").write_text(json.dumps(gamma))
    centres, _, _, _ = market(100_000)
    u = user_for(centres, 17, 100, gamma)
    np.savez(work / "table_user.npz", z=u["z"], beta=u["beta"])
    RKMEImageSpec(random_state=0).fit(blobs(500, seed=5)).save(work / "image_user.json")
    pool = blobs(2000, seed=2).astype(np.float32)
    np.save(work / "image_pool.npy", (pool - pool.mean((0, 2, 3), keepdims=True)) / pool.std((0, 2, 3), keepdims=True))


def image_specs(work: Path, cls, user) -> dict:  # type: ignore[no-untyped-def]
    pool = np.load(work / "image_pool.npy")
    nz = int((user.beta_ > 1e-9 * user.beta_.max()).sum())
    rng = np.random.default_rng(3)
    specs = {}
    for i in range(1000):
        s = cls()
        s.z_ = pool[rng.choice(len(pool), 50, replace=False)]
        b = rng.random(50)
        b[rng.permutation(50)[nz:]] = 0.0
        s.beta_, s.num_points_ = b / b.sum(), 100
        specs[f"{i:064x}"] = s
    return specs


def text_specs(cls, n: int = 2000, K: int = 50, d: int = 384) -> tuple[dict, object]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    topics = rng.normal(size=(20, d))

    def spec(t: int):  # type: ignore[no-untyped-def]
        s = cls(gamma=0.1, K=K)
        z = topics[t] + 0.8 * rng.normal(size=(K, d))
        s.z_ = z / np.linalg.norm(z, axis=1, keepdims=True)
        s.beta_, s.num_points_ = rng.dirichlet(np.ones(K)), 100
        s.embedder_, s.embedding_dim_, s.language_ = "hashing-384", d, []
        return s

    return {f"{i:064x}": spec(i % 20) for i in range(n)}, spec(3)


# -- each tree's API ---------------------------------------------------------------------------
class _StandIn:
    """What the old dense cache asked of a dock: its search folder, generation, entries and lock."""

    def __init__(self, path: Path, entries: list) -> None:
        self.path, self._entries = path, entries

    def generation(self) -> int:
        return 1

    def entries(self) -> list:
        return self._entries

    def lock(self):  # type: ignore[no-untyped-def]
        return contextlib.nullcontext()


class OldAPI:
    def __init__(self) -> None:
        from lwdock.search import cache
        from lwdock.search.api import search_cache

        self.cache, self._search_cache = cache, search_cache

    def bulk_load(self, *a, **k):  # type: ignore[no-untyped-def]
        return self.cache.bulk_load(*a, **k)

    def search_cache(self, c, user, **kw):  # type: ignore[no-untyped-def]
        return self._search_cache(c, user, **kw).ids

    def dense(self, path: Path, kind: str, specs: dict):  # type: ignore[no-untyped-def]
        from lwdock.search import dense

        entries = [{"id": i, "status": "ok", "specs": [{"kind": kind}]} for i in specs]
        dock = _StandIn(path, entries)
        path.mkdir()
        dense._load_entry_spec = lambda _dock, e, _kind: specs[e["id"]]

        def run(user, **kw):  # type: ignore[no-untyped-def]
            return dense.stat_search_dense(dock, user, entries, k=10, max_mixture=5, **kw).ids

        return run


class NewAPI:
    def __init__(self) -> None:
        from lwdock.search import store
        from lwdock.search.api import search_cache

        self.store, self._search_cache = store, search_cache

    def bulk_load(self, *a, **k):  # type: ignore[no-untyped-def]
        return self.store.bulk_load(*a, **k)

    def search_cache(self, c, user, **kw):  # type: ignore[no-untyped-def]
        return self._search_cache(c, user, **kw).ids

    def dense(self, path: Path, kind: str, specs: dict):  # type: ignore[no-untyped-def]
        self.store.SegmentStore(path).apply([self.store.item_from_spec(i, s) for i, s in specs.items()], [], 1)

        def run(user, **kw):  # type: ignore[no-untyped-def]
            # a fresh store object each call: manifest read and arrays mapped, as a new search does
            return self._search_cache(self.store.SegmentStore(path), user, k=10, max_mixture=5, **kw).ids

        return run


# -- the worker --------------------------------------------------------------------------------
def table_rows(api, work: Path, tmp: Path, sizes: list[int]) -> dict:  # type: ignore[no-untyped-def]
    from bench_search import ids_for, market

    gamma = json.loads((work / "gamma.json").read_text())
    u = dict(np.load(work / "table_user.npz"), gamma=gamma)
    out = {}
    for n in sizes:
        _, z, beta, off = market(n)
        c = api.bulk_load(tmp / f"t{n}", ids_for(n), z, beta, off, gamma, dtype="float32")
        api.search_cache(c, u, prefilter=False)  # warm the page cache
        out[f"table {n}: exact + mixture"] = _best(lambda: api.search_cache(c, u, prefilter=False))
        out[f"table {n}: ranking only"] = _best(lambda: api.search_cache(c, u, prefilter=False, max_mixture=1))
        if n >= 100_000:
            out[f"table {n}: pre-filter + mixture"] = _best(lambda: api.search_cache(c, u, prefilter=True))
    return out


def dock_rows(work: Path, tmp: Path, tree: str) -> dict:
    sys.path.insert(0, str(Path(tree) / "tests"))
    from bench_search import build_dock, ids_for, market, template_entry

    from lwdock.search.api import search

    gamma = json.loads((work / "gamma.json").read_text())
    u = np.load(work / "table_user.npz")
    spec = tmp / "user.json"
    spec.write_text(json.dumps({"z": u["z"].tolist(), "beta": u["beta"].tolist(), "gamma": gamma,
                                "num_points": 100, "type": "RKMETableSpecification"}))
    out = {}
    for n in (1000, 10_000):
        _, z, beta, off = market(n)
        # each tree's bench_search builds the dock (index, and its own search cache) its own way
        build_dock(tmp / f"dock{n}", template_entry(tmp / f"tpl{n}"), ids_for(n), z, beta, off, gamma)
        from lwdock.store.dock import Dock

        dock = Dock.open(tmp / f"dock{n}")
        search(dock, spec)
        out[f"dock {n}: search() end to end"] = _best(lambda: search(dock, spec), repeat=3)
    return out


def dense_rows(api, work: Path, tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    from lwdock.spec.rkme_image import RKMEImageSpec
    from lwdock.spec.rkme_text import RKMETextSpec
    from lwdock.spec.specfile import load_spec

    user = load_spec(work / "image_user.json")
    run = api.dense(tmp / "img", "image", image_specs(work, RKMEImageSpec, user))
    t0 = time.perf_counter()
    run(user)
    out = {"image 1000: first search (old: builds the cache)": time.perf_counter() - t0}
    out["image 1000: default (pre-filter)"] = _best(lambda: run(user), repeat=3)
    out["image 1000: exact"] = _best(lambda: run(user, prefilter=False), repeat=2)
    specs, tuser = text_specs(RKMETextSpec)
    trun = api.dense(tmp / "txt", "text", specs)
    trun(tuser)
    out["text 2000: exact + mixture"] = _best(lambda: trun(tuser))
    return out


def worker(api_name: str, work: Path, tree: str, sizes: list[int]) -> None:
    sys.path.insert(0, str(Path(tree) / "benchmarks"))
    api = OldAPI() if api_name == "old" else NewAPI()
    with tempfile.TemporaryDirectory(prefix=f"cmp-{api_name}-") as t:
        tmp = Path(t)
        out = table_rows(api, work, tmp, sizes)
        out.update(dock_rows(work, tmp, tree))
        out.update(dense_rows(api, work, tmp))
    print(json.dumps(out))


# -- the driver --------------------------------------------------------------------------------
def drive(old_tree: Path, rounds: int, sizes: str) -> None:
    sys.path.insert(0, str(HERE))
    from _common import report

    new_tree = HERE.parent
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="cmp-inputs-") as w:
        work = Path(w)
        make_inputs(work)
        for r in range(rounds):
            for name, tree in (("old", old_tree), ("new", new_tree)) if r % 2 == 0 else (("new", new_tree), ("old", old_tree)):
                env = dict(os.environ, PYTHONPATH=str(tree), LWDOCK_NO_PROGRESS="1")
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--work", str(work),
                       "--tree", str(tree), "--sizes", sizes]
                p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                runs[name].append(json.loads(p.stdout.strip().splitlines()[-1]))
                print(name, runs[name][-1], flush=True)
    rows = []
    for key in runs["new"][0]:
        old = min(r[key] for r in runs["old"])
        new = min(r[key] for r in runs["new"])
        rows.append({"workload": key, "old_s": old, "new_s": new, "new / old": new / old})
    notes = (f"Best of {REPEAT} warm calls per run, then the best over {rounds} alternating runs per tree "
             f"(old tree: {old_tree}). Same machine, same inputs, same run. "
             "Command: `.venv/bin/python benchmarks/bench_search_compare.py --old-tree DIR`.")
    report("search_compare", "Search time: this tree against the previous implementation", rows,
           ["workload", "old_s", "new_s", "new / old"], notes, extra={"runs": runs})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-tree", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--worker", choices=["old", "new"])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--tree")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        worker(args.worker, args.work, args.tree, sizes)
    else:
        drive(args.old_tree, args.rounds, args.sizes)


if __name__ == "__main__":
    main()
