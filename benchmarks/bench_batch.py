"""Batch jobs (issue 16): worker start-up, fresh vs fork server, and bulk submit, in one run.

Usage: python benchmarks/bench_batch.py [--n 40] [--starts 9] [--jobs 2]

* worker start: ``ModelWorker.start()`` to 'ready' (sandboxed: bubblewrap, or a fork of the
  environment's fork server), a numpy-only model and a small scikit-learn learnware,
  fresh (``LWDOCK_FORK_SERVER=0``) and forked, interleaved. Goal: >= 5x faster.
* predict: a cold ``lwdock predict`` process with a 5-learnware average ensemble on 100 rows,
  sandboxed (fresh workers, fork server) against ``--trusted``, and 4 files in one call.
  Goals: within 1.5x of --trusted and under 2 s; 4 files under 1.3x one file.
* submit: ``--n`` distinct small scikit-learn learnwares with full model checks into a dock
  whose env is warm: one by one with fresh workers (before), one by one with the fork
  server, and ``submit_many`` with ``--jobs``. Goal: <= 0.15 s per learnware on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import report  # noqa: E402
from bench_check import TRIVIAL, YAML  # noqa: E402

# a pickled scikit-learn model, without the learnware shim (so --trusted can load it in-process too)
MODEL = '''
import os, pickle


class Model:
    def __init__(self):
        self.input_shape, self.output_shape = (8,), (2,)
        with open(os.path.join(os.path.dirname(__file__), "model.pkl"), "rb") as f:
            self.clf = pickle.load(f)

    def predict(self, X):
        return self.clf.predict_proba(X)
'''


def make_zips(dest: Path, n: int) -> list[Path]:
    """``n`` distinct learnwares (a LogisticRegression each, its own data and spec)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lwdock.spec.rkme_table import RKMETableSpec
    from lwdock.spec.specfile import table_to_dict

    dest.mkdir()
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        X = rng.normal(loc=i % 5, size=(200, 8))
        y = (X[:, 0] + X[:, 1] > 2 * (i % 5)).astype(int)
        clf = LogisticRegression().fit(X, y)
        spec = RKMETableSpec(K=10, random_state=i).fit(X)
        sem = {"Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Classification"]},
               "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
               "Scenario": {"Type": "Tag", "Values": ["Others"]}, "License": {"Type": "Class", "Values": ["MIT"]},
               "Name": {"Type": "String", "Values": f"bench {i}"}, "Description": {"Type": "String", "Values": "b"},
               "Input": {"Dimension": 8, "Description": {}}, "Output": {"Dimension": 2, "Description": {}}}
        z = dest / f"lw{i:04d}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("learnware.yaml", YAML)
            zf.writestr("__init__.py", MODEL)
            zf.writestr("model.pkl", pickle.dumps(clf))
            zf.writestr("stat.json", json.dumps(table_to_dict(spec)))
            zf.writestr("requirements.txt", "numpy\nscikit-learn\n")
            zf.writestr("semantic_specification.json", json.dumps(sem))
        out.append(z)
    return out


def fork_server(on: bool) -> None:
    os.environ["LWDOCK_FORK_SERVER"] = "1" if on else "0"


def starts(tmp: Path, python: str, sk_root: Path, rounds: int, rows: list[dict]) -> None:
    from lwdock.check.runner import ModelWorker

    trivial = tmp / "trivial"
    trivial.mkdir()
    (trivial / "__init__.py").write_text(TRIVIAL)
    work = tmp / "work"
    work.mkdir()
    roots = {"numpy-only model": trivial, "sklearn learnware": sk_root}
    times: dict = {(name, m): [] for name in roots for m in ("fresh", "forked")}
    for _ in range(rounds):
        for name, root in roots.items():
            for m in ("fresh", "forked"):
                fork_server(m == "forked")
                w = ModelWorker(root, python=python, workdir_base=work)
                t0 = time.perf_counter()
                w.start()
                times[name, m].append(time.perf_counter() - t0)
                kind = type(w.proc).__name__
                w.close()
                assert (kind == "WorkerProcess") == (m == "forked"), f"{m} start used {kind}"
    for name in roots:
        fresh, forked = statistics.median(times[name, "fresh"]), statistics.median(times[name, "forked"])
        rows.append({"case": f"worker start, {name}: fresh interpreter under bwrap", "seconds": fresh,
                     "note": f"median of {rounds}"})
        rows.append({"case": f"worker start, {name}: forked from the fork server", "seconds": forked,
                     "ratio": fresh / forked, "goal": ">= 5x faster", "met": fresh / forked >= 5,
                     "note": f"median of {rounds}; ratio = fresh / forked"})


def submits(tmp: Path, zips: list[Path], jobs: int, rows: list[dict]) -> None:
    from lwdock.api import Dock
    from lwdock.batch.executors import LocalExecutor
    from lwdock.batch.submit import submit_many

    n = len(zips)
    per: dict[str, float] = {}
    for label, how in (("one by one, fresh workers (before)", "fresh"), ("one by one, fork server", "forked"),
                       (f"bulk submit_many, --jobs {jobs}", "bulk")):
        dock = Dock.init(tmp / f"dock-{how}")
        fork_server(how != "fresh")
        dock.submit(zips[0])  # warm: the env is built, the fork server started
        t0 = time.perf_counter()
        if how == "bulk":
            results = submit_many(dock, zips[1:], executor=LocalExecutor(jobs))
            assert all(r.ok and r.entry.status == "usable" for r in results), [r.error for r in results if not r.ok]
        else:
            for z in zips[1:]:
                assert dock.submit(z).status == "usable"
        per[how] = (time.perf_counter() - t0) / (n - 1)
        rows.append({"case": f"submit {n - 1} learnwares with model checks: {label}", "seconds": per[how],
                     "ratio": per["fresh"] / per[how],
                     **({"goal": "<= 0.15 s per learnware", "met": per[how] <= 0.15} if how == "bulk" else {}),
                     "note": f"s per learnware (warm env); 5,000 would take {5000 * per[how] / 60:.1f} min"})


def predicts(tmp: Path, zips: list[Path], rounds: int, rows: list[dict]) -> None:
    """Cold ``lwdock predict`` of a 5-learnware average ensemble: sandboxed (fresh / fork server) vs --trusted."""
    import subprocess

    import numpy as np

    from lwdock.api import Dock
    from lwdock.reuse.api import reuse

    dock = Dock.init(tmp / "dock-predict")
    ids = [dock.submit(z, run_model=False).id for z in zips[:5]]
    X = np.random.default_rng(0).normal(size=(400, 8))
    with reuse(dock, ids, "average", data=X[:100], trusted=True) as ens:
        lwe = ens.save(tmp / "avg.lwe")
    parts = []
    for k in range(4):
        parts.append(tmp / f"part{k}.csv")
        np.savetxt(parts[-1], X[100 * k : 100 * (k + 1)], delimiter=",")
    exe = str(Path(sys.executable).parent / "lwdock")
    cases = {"--trusted, 1 file": (["--trusted"], parts[:1], "1"),
             "sandboxed, fresh workers, 1 file": ([], parts[:1], "0"),
             "sandboxed, fork server, 1 file": ([], parts[:1], "1"),
             "sandboxed, fork server, 4 files in one call": ([], parts, "1")}
    times: dict[str, list[float]] = {c: [] for c in cases}
    for r in range(rounds):
        for case, (flags, files, fs) in cases.items():
            env = {**os.environ, "LWDOCK_FORK_SERVER": fs, "LWDOCK_NO_PROGRESS": "1"}
            t0 = time.perf_counter()
            subprocess.run([exe, "--dock", str(dock.path), "predict", str(lwe), *map(str, files), "-o",
                            f"{tmp}/out-{r}/", *flags], check=True, capture_output=True, env=env)
            times[case].append(time.perf_counter() - t0)
    med = {c: statistics.median(v) for c, v in times.items()}
    base = med["--trusted, 1 file"]
    for case in cases:
        row = {"case": f"cold `lwdock predict`, 5 sklearn learnwares, 100 rows: {case}", "seconds": med[case],
               "ratio": med[case] / base, "note": f"median of {rounds}; ratio = / --trusted"}
        if case == "sandboxed, fork server, 1 file":
            row.update(goal="<= 1.5x --trusted and < 2 s", met=med[case] <= 1.5 * base and med[case] < 2)
        if case.endswith("4 files in one call"):
            one = med["sandboxed, fork server, 1 file"]
            row.update(goal="< 1.3x one file", met=med[case] < 1.3 * one,
                       note=f"median of {rounds}; {med[case] / one:.2f}x one file")
        rows.append(row)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="learnwares to submit")
    ap.add_argument("--starts", type=int, default=9, help="rounds of worker starts")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--predicts", type=int, default=3, help="rounds of cold predict calls")
    args = ap.parse_args()

    import logging

    from lwdock.check.checks import check_zip
    from lwdock.format.package import open_package

    logging.getLogger("lwdock").setLevel(logging.ERROR)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lwdock-bench-") as t:
        tmp = Path(t)
        zips = make_zips(tmp / "zips", args.n + 1)
        envs = tmp / "envs"
        rep = check_zip(zips[0], envs_dir=envs)
        python = rep.env["python"]
        starts(tmp, python, open_package(zips[0], tmp / "sk-pkg").root, args.starts, rows)
        submits(tmp, zips, args.jobs, rows)
        predicts(tmp, zips, args.predicts, rows)
    report("batch", "Batch jobs: worker start-up and bulk submit", rows,
           ["case", "seconds", "ratio", "goal", "met", "note"],
           notes="Same run, same machine; ratios are what to compare. Worker start = ModelWorker.start() to 'ready' "
                 "(kernel sandbox in both). Submit: distinct LogisticRegression learnwares, every check including "
                 "the model run, the env already built.")


if __name__ == "__main__":
    main()
