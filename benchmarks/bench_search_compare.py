"""Search time of this tree against an older lwdock, interleaved in one process (issue 12's "within 10 %").

The older tree is a plain checkout (``git archive <commit> | tar -x -C DIR``). Its ``lwdock`` package is
copied under the name ``lwdock_old`` (its imports are relative) and imported beside this tree's, so
both run in one process on the same inputs, with calls alternating old / new: on a shared machine
whose load moves by 2x within minutes, only interleaved timings give stable ratios. Nothing of the
old implementation is copied into this file: each side calls its own package's public API.

Workloads (best of ``--repeat`` alternating calls each):

* ``table N``: N synthetic table RKMEs (K=100, d=32, the market of ``bench_search.py``), bulk-loaded;
  warm search with the greedy mixture, ranking alone, and (N = 100,000) with the pre-filter.
* ``dock N``: a real dock of N entries (cloned index entries, bulk-loaded store); warm
  ``search(dock, spec_file)`` end to end: index read, semantic filter, store check, ranking, mixture.
* ``image 1000``: synthetic image RKMEs (K=50, 3x32x32, the weight sparsity of fitted specs, as in
  ``bench_paper_image.py``): building the store/cache once, then warm search (default pre-filter, exact).
* ``text 2000``: synthetic text RKMEs (K=50, 384-d unit vectors, gamma 0.1): building, warm exact search.

    git archive <old commit> | tar -x -C /tmp/lwdock-old
    .venv/bin/python benchmarks/bench_search_compare.py --old-tree /tmp/lwdock-old

(``make bench`` runs it only when ``LWDOCK_OLD_TREE`` names such a tree.)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import report  # noqa: E402
from bench_search import ids_for, market, median_gamma, template_entry, user_for  # noqa: E402
from bench_paper_image import synthetic_specs  # noqa: E402
from bench_spec_image_text import blobs  # noqa: E402


K, D = 100, 32


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(old, new, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best time of each of two calls, alternating them ``repeat`` times (after one warm-up each)."""
    old(), new()
    t_old, t_new = [], []
    for r in range(repeat):
        if r % 2:
            t_new.append(_time(new))
            t_old.append(_time(old))
        else:
            t_old.append(_time(old))
            t_new.append(_time(new))
    return min(t_old), min(t_new)


# -- the two packages ------------------------------------------------------------------------------
def packages(old_tree: Path, tmp: Path) -> dict[str, SimpleNamespace]:
    shutil.copytree(old_tree / "lwdock", tmp / "oldpkg" / "lwdock_old")
    sys.path.insert(0, str(tmp / "oldpkg"))

    def mod(name: str):  # type: ignore[no-untyped-def]
        return importlib.import_module(name)

    old = SimpleNamespace(
        name="old", bulk_load=mod("lwdock_old.search.cache").bulk_load, search_cache=mod("lwdock_old.search.api").search_cache,
        search=mod("lwdock_old.search.api").search, Dock=mod("lwdock_old.store.dock").Dock,
        open_index=mod("lwdock_old.store.index").open_index, Image=mod("lwdock_old.spec.rkme_image").RKMEImageSpec,
        Text=mod("lwdock_old.spec.rkme_text").RKMETextSpec, dense=mod("lwdock_old.search.dense"))
    new = SimpleNamespace(
        name="new", bulk_load=mod("lwdock.search.store").bulk_load, search_cache=mod("lwdock.search.api").search_cache,
        search=mod("lwdock.search.api").search, Dock=mod("lwdock.store.dock").Dock,
        open_index=mod("lwdock.store.index").open_index, Image=mod("lwdock.spec.rkme_image").RKMEImageSpec,
        Text=mod("lwdock.spec.rkme_text").RKMETextSpec, store=mod("lwdock.search.store"))
    return {"old": old, "new": new}


class _StandIn:
    """What the old per-kind image/text cache asked of a dock: a folder, a generation, entries, a lock."""

    def __init__(self, path: Path, entries: list) -> None:
        self.path, self._entries = path, entries

    def generation(self) -> int:
        return 1

    def entries(self) -> list:
        return self._entries

    def lock(self):  # type: ignore[no-untyped-def]
        return contextlib.nullcontext()


def dense_search(pkg: SimpleNamespace, path: Path, kind: str, specs: dict):  # type: ignore[no-untyped-def]
    """A search function over ``specs`` for one package (the old one builds its cache at the first call)."""
    if pkg.name == "old":
        entries = [{"id": i, "status": "ok", "specs": [{"kind": kind}]} for i in specs]
        dock = _StandIn(path, entries)
        path.mkdir()
        pkg.dense._load_entry_spec = lambda _dock, e, _kind: specs[e["id"]]
        return lambda user, **kw: pkg.dense.stat_search_dense(dock, user, entries, k=10, max_mixture=5, **kw).ids
    pkg.store.SegmentStore(path).apply([pkg.store.item_from_spec(i, s) for i, s in specs.items()], [], 1)
    # a fresh store object per call: manifest read and arrays mapped, as a new search does
    return lambda user, **kw: pkg.search_cache(pkg.store.SegmentStore(path), user, k=10, max_mixture=5, **kw).ids


# -- workloads ----------------------------------------------------------------------------------
def table_rows(pkgs: dict, tmp: Path, sizes: list[int], gamma: float, user: dict, repeat: int) -> list[dict]:
    rows = []
    for n in sizes:
        _, z, beta, off = market(n)
        stores = {k: p.bulk_load(tmp / f"{k}-t{n}", ids_for(n), z, beta, off, gamma, dtype="float32")
                  for k, p in pkgs.items()}
        del z, beta

        def call(k: str, **kw):  # type: ignore[no-untyped-def]
            return lambda: pkgs[k].search_cache(stores[k], user, **kw)

        cases = [("exact + mixture", {"prefilter": False}), ("ranking only", {"prefilter": False, "max_mixture": 1})]
        if n >= 100_000:
            cases.append(("pre-filter + mixture", {"prefilter": True}))
        for label, kw in cases:
            t_old, t_new = interleaved(call("old", **kw), call("new", **kw), repeat)
            rows.append({"workload": f"table {n}: {label}", "old_s": t_old, "new_s": t_new})
        for k in pkgs:
            shutil.rmtree(tmp / f"{k}-t{n}", ignore_errors=True)
    return rows


def build_dock(pkg: SimpleNamespace, path: Path, template: dict, n: int, gamma: float) -> None:
    _, z, beta, off = market(n)
    ids = ids_for(n)
    dock = pkg.Dock.init(path, gamma=gamma)
    semantic = copy.deepcopy(template["semantic"])
    semantic["Input"]["Dimension"] = D
    specs = [{**template["specs"][0], "dim": D, "gamma": gamma, "num_points": K}]
    entries = [{**template, "id": i, "status": "usable", "semantic": semantic, "specs": specs} for i in ids]
    with dock.lock():
        with pkg.open_index(dock.layout.index_dir) as idx:
            idx.replace_all(entries)
        shutil.rmtree(dock.layout.search, ignore_errors=True)
        pkg.bulk_load(dock.layout.search, ids, z, beta, off, gamma, dtype="float32", generation=dock.generation())


def cold(tree: Path | None, dock: Path, spec: Path) -> float:
    """Wall time of a whole ``lwdock search --spec`` process (``tree``: the old checkout, else this one)."""
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree else dict(os.environ)
    exe = str(Path(sys.executable).parent / "lwdock")
    t0 = time.perf_counter()
    subprocess.run([exe, "--dock", str(dock), "search", "--spec", str(spec), "--json"], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def dock_rows(pkgs: dict, tmp: Path, gamma: float, user: dict, repeat: int, old_tree: Path) -> list[dict]:
    template = template_entry(tmp / "template")
    spec = tmp / "user.json"
    spec.write_text(json.dumps({"z": user["z"].tolist(), "beta": user["beta"].tolist(), "gamma": gamma,
                                "num_points": K, "type": "RKMETableSpecification"}))
    rows = []
    for n in (1000, 10_000):
        docks = {}
        for k, p in pkgs.items():
            build_dock(p, tmp / f"{k}-dock{n}", template, n, gamma)
            docks[k] = p.Dock.open(tmp / f"{k}-dock{n}")
        t_old, t_new = interleaved(lambda: pkgs["old"].search(docks["old"], spec),
                                   lambda: pkgs["new"].search(docks["new"], spec), max(3, repeat // 2))
        # of which: reading the index as records (Dock.entries())
        index_read = min(_time(docks["new"].entries) for _ in range(3))
        rows.append({"workload": f"dock {n}: search() end to end", "old_s": t_old, "new_s": t_new,
                     "of which Dock.entries()": index_read})
        t_old, t_new = interleaved(lambda: cold(old_tree, tmp / f"old-dock{n}", spec),
                                   lambda: cold(None, tmp / f"new-dock{n}", spec), 3)
        rows.append({"workload": f"dock {n}: cold `lwdock search` process", "old_s": t_old, "new_s": t_new})
    return rows


def image_specs(cls, nz: int) -> dict:  # type: ignore[no-untyped-def]
    return {f"{i:064x}": s for i, s in enumerate(synthetic_specs(cls, nz))}


def text_specs(cls, n: int = 2000, K: int = 50, d: int = 384) -> tuple[dict, object]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    topics = rng.normal(size=(20, d))

    def spec(t: int, r: np.random.Generator):  # type: ignore[no-untyped-def]
        s = cls(gamma=0.1, K=K)
        z = topics[t] + 0.8 * r.normal(size=(K, d))
        s.z_ = z / np.linalg.norm(z, axis=1, keepdims=True)
        s.beta_, s.num_points_ = r.dirichlet(np.ones(K)), 100
        s.embedder_, s.embedding_dim_, s.language_ = "hashing-384", d, []
        return s

    return {f"{i:064x}": spec(i % 20, rng) for i in range(n)}, spec(3, np.random.default_rng(5))


def dense_rows(pkgs: dict, tmp: Path, repeat: int) -> list[dict]:
    from lwdock.spec.specfile import load_spec

    user_new = pkgs["new"].Image(random_state=0).fit(blobs(500, seed=5))  # default settings, K=50
    user_new.save(tmp / "image_user.json")
    users = {"new": load_spec(tmp / "image_user.json"),
             "old": importlib.import_module("lwdock_old.spec.specfile").load_spec(tmp / "image_user.json")}
    nz = int((user_new.beta_ > 1e-9 * user_new.beta_.max()).sum())
    runs, build = {}, {}
    for k in ("old", "new"):
        specs = image_specs(pkgs[k].Image, nz)
        t0 = time.perf_counter()
        runs[k] = dense_search(pkgs[k], tmp / f"{k}-img", "image", specs)
        runs[k](users[k])
        build[k] = time.perf_counter() - t0
    rows = [{"workload": "image 1000: build + first search", "old_s": build["old"], "new_s": build["new"]}]
    t_old, t_new = interleaved(lambda: runs["old"](users["old"]), lambda: runs["new"](users["new"]), max(3, repeat // 2))
    rows.append({"workload": "image 1000: default (pre-filter)", "old_s": t_old, "new_s": t_new})
    t_old, t_new = interleaved(lambda: runs["old"](users["old"], prefilter=False),
                               lambda: runs["new"](users["new"], prefilter=False), 2)
    rows.append({"workload": "image 1000: exact", "old_s": t_old, "new_s": t_new})
    for k in ("old", "new"):
        specs, tuser = text_specs(pkgs[k].Text)
        t0 = time.perf_counter()
        runs[k] = dense_search(pkgs[k], tmp / f"{k}-txt", "text", specs)
        runs[k](tuser)
        build[k] = time.perf_counter() - t0
        users[k] = tuser
    rows.append({"workload": "text 2000: build + first search", "old_s": build["old"], "new_s": build["new"]})
    t_old, t_new = interleaved(lambda: runs["old"](users["old"]), lambda: runs["new"](users["new"]), repeat)
    rows.append({"workload": "text 2000: exact + mixture", "old_s": t_old, "new_s": t_new})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-tree", type=Path, default=os.environ.get("LWDOCK_OLD_TREE") or None)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--workloads", default="table,dock,dense", help="comma-separated subset of table,dock,dense")
    args = ap.parse_args()
    if args.old_tree is None:  # run_all.py runs every bench_*.py: without an old tree there is nothing to compare
        print("bench_search_compare: skipped (give --old-tree DIR or LWDOCK_OLD_TREE)")
        return
    t_all = time.perf_counter()
    gamma = median_gamma(market(1000)[1])
    centres = market(100_000)[0]
    user = user_for(centres, 17, 100, gamma)
    with tempfile.TemporaryDirectory(prefix="lwdock-cmp-") as t:
        tmp = Path(t)
        pkgs = packages(Path(args.old_tree), tmp)
        which = set(args.workloads.split(","))
        rows = table_rows(pkgs, tmp, [int(s) for s in args.sizes.split(",")], gamma, user, args.repeat) \
            if "table" in which else []
        rows += dock_rows(pkgs, tmp, gamma, user, args.repeat, Path(args.old_tree)) if "dock" in which else []
        rows += dense_rows(pkgs, tmp, args.repeat) if "dense" in which else []
    for r in rows:
        r["new / old"] = r["new_s"] / r["old_s"]
    notes = (f"Old: {args.old_tree} imported as `lwdock_old` beside this tree's `lwdock`, same process, same "
             f"inputs; each figure is the best of {args.repeat} calls (3-4 for docks and images, 2 for exact image "
             "search), old and new alternating. Builds are timed once each. Whole run "
             f"{time.perf_counter() - t_all:.0f} s. Command: `.venv/bin/python benchmarks/bench_search_compare.py "
             "--old-tree DIR`.")
    report("search_compare", "Search time: this tree against the previous implementation (same run)", rows,
           ["workload", "old_s", "new_s", "new / old", "of which Dock.entries()"], notes)


if __name__ == "__main__":
    main()
