"""Reuse: time and accuracy of each reuser on a test market; `lwdock predict` throughput.

Part 1 builds the Gaussian market of the tests (10 classes, 20 features; 8 learnwares,
each trained on 4 classes in ratios 0.4/0.4/0.1/0.1; a user with 6 classes in ratios
0.3/0.3/0.1/0.1/0.1/0.1) and runs every reuser with trusted in-process models.
Part 2 stores 5 learnwares in a dock and times `lwdock predict` (sandboxed workers) on
100,000 rows against calling the same 5 models in-process and averaging.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import report  # noqa: E402

# the benchmark uses the same market and model code as the reuse tests
sys.path.insert(0, str(HERE.parent / "tests"))
from test_reuse_dock import MODEL_CODE  # noqa: E402
from test_reuse_market import DIM, N_CLASSES, Market  # noqa: E402


class Proba:
    def __init__(self, clf):
        self.clf = clf

    def predict(self, X):
        p = np.zeros((len(X), N_CLASSES))
        p[:, self.clf.classes_] = self.clf.predict_proba(X)
        return p


def part1(rows):
    from lwdock.reuse.api import build_ensemble
    from lwdock.reuse.base import InProcessPredictor
    from lwdock.reuse.baseline import BaselineModel
    from lwdock.reuse.job_selector import mixture_weights
    from lwdock.spec.rkme_table import RKMETableSpec

    accs = {k: [] for k in ("mean single", "best single", "average (uniform)", "average (mixture)", "job-selector",
                            "ensemble-pruning (50 labels)", "feature-augment (50 labels)", "baseline (50 labels)")}
    times = {k: [] for k in accs}
    for seed in range(3):
        m = Market(seed)
        X, y = m.user(1050)
        Xl, yl, Xt, yt = X[:50], y[:50], X[50:], y[50:]
        lws = [InProcessPredictor(Proba(c), id=f"lw{i}") for i, c in enumerate(m.models)]
        specs = [RKMETableSpec(K=50, random_state=i).fit(T) for i, T in enumerate(m.train)]
        singles = [np.mean(lw.predict(Xt).argmax(1) == yt) for lw in lws]
        accs["mean single"].append(np.mean(singles))
        accs["best single"].append(np.max(singles))

        def run(name, fn):
            t0 = time.perf_counter()
            pred = fn()
            times[name].append(time.perf_counter() - t0)
            accs[name].append(np.mean(pred == yt))

        run("average (uniform)", lambda: build_ensemble(lws, "average", "classification", N_CLASSES, data=Xt).predict(Xt))
        run("average (mixture)", lambda: build_ensemble(lws, "average", "classification", N_CLASSES, data=Xt,
                                                        weights=mixture_weights(specs, Xt)).predict(Xt))
        run("job-selector", lambda: build_ensemble(lws, "job-selector", "classification", N_CLASSES, data=Xt,
                                                   specs=specs).predict(Xt))
        run("ensemble-pruning (50 labels)", lambda: build_ensemble(lws, "ensemble-pruning", "classification", N_CLASSES,
                                                                   labeled=(Xl, yl)).predict(Xt))
        run("feature-augment (50 labels)", lambda: build_ensemble(lws, "feature-augment", "classification", N_CLASSES,
                                                                  labeled=(Xl, yl)).predict(Xt))
        run("baseline (50 labels)", lambda: BaselineModel(n_classes=N_CLASSES).fit(Xl, yl).predict(Xt))
    for k in accs:
        rows.append({"part": "market (3 seeds, 1000 test rows)", "method": k, "accuracy": float(np.mean(accs[k])),
                     "seconds": float(np.mean(times[k])) if times[k] else None})


def learnware_zip(path, clf, X, name):
    from lwdock.spec.rkme_table import RKMETableSpec

    params = io.BytesIO()
    np.savez(params, coef=clf.coef_, intercept=clf.intercept_, classes=clf.classes_)
    spec = path.with_suffix(".json")
    RKMETableSpec(K=30).fit(X).save(spec)
    sem = {"Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Classification"]},
           "Library": {"Type": "Class", "Values": ["Others"]}, "Scenario": {"Type": "Tag", "Values": ["Business"]},
           "License": {"Type": "Class", "Values": ["MIT"]}, "Name": {"Type": "String", "Values": name},
           "Description": {"Type": "String", "Values": "bench"}, "Input": {"Dimension": DIM, "Description": {}},
           "Output": {"Dimension": N_CLASSES, "Description": {}}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("learnware.yaml", "model:\n  class_name: Model\n  module_path: __init__.py\n  kwargs: {}\n"
                    "stat_specifications:\n  - module_path: learnware.specification\n"
                    "    class_name: RKMETableSpecification\n    file_name: rkme.json\n    kwargs: {}\n")
        zf.writestr("__init__.py", MODEL_CODE)
        zf.writestr("params.npz", params.getvalue())
        zf.writestr("rkme.json", spec.read_text())
        zf.writestr("semantic_specification.json", json.dumps(sem))
    return path


def part2(rows, n_rows=100_000):
    from lwdock.reuse.api import load_ensemble, reuse
    from lwdock.reuse.execute import _load_trusted_model
    from lwdock import Dock

    m = Market(0, n_learnwares=5)
    X = m.rng.normal(size=(n_rows, DIM))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dock = Dock.init(tmp / "dock")
        ids = [dock.submit(learnware_zip(tmp / f"lw{i}.zip", c, T, f"lw{i}"), run_model=False).id
               for i, (c, T) in enumerate(zip(m.models, m.train))]
        with reuse(dock, ids, "average", data=X[:100], trusted=True) as ens:
            ens.save(tmp / "e.lwe")
        data = tmp / "data.npy"
        np.save(data, X)
        models = [_load_trusted_model(dock.package(i), i) for i in ids]

        def in_process():
            return np.mean([mdl.predict(X) for mdl in models], axis=0).argmax(1)

        t_inproc = min(_time(in_process) for _ in range(3))
        ref = in_process()

        def via_library(trusted):
            with load_ensemble(tmp / "e.lwe", dock, trusted=trusted) as e:
                return e.predict(X)

        t_lib = min(_time(lambda: via_library(False)) for _ in range(3))
        assert np.array_equal(via_library(False), ref)
        with load_ensemble(tmp / "e.lwe", dock) as warm:  # workers already started: the steady state of a batch job
            warm.predict(X[:1000])
            t_warm = min(_time(lambda: warm.predict(X)) for _ in range(3))
        exe = [sys.executable, "-m", "lwdock", "--dock", str(dock.path), "predict", str(tmp / "e.lwe"), str(data),
               "-o", str(tmp / "p.npy")]
        t_cli = min(_time(lambda: subprocess.run(exe, check=True, capture_output=True)) for _ in range(3))
        t_cli_trusted = min(_time(lambda: subprocess.run([*exe, "--trusted"], check=True, capture_output=True)) for _ in range(2))
        assert np.array_equal(np.load(tmp / "p.npy"), ref)
    part = f"predict {n_rows:,} rows x {DIM}, 5 learnwares, average"
    rows.append({"part": part, "method": "5 models in-process + mean (reference)", "seconds": t_inproc, "ratio": 1.0})
    rows.append({"part": part, "method": "Ensemble.predict, sandboxed workers already started", "seconds": t_warm, "ratio": t_warm / t_inproc})
    rows.append({"part": part, "method": "load_ensemble + predict, sandboxed workers", "seconds": t_lib, "ratio": t_lib / t_inproc})
    rows.append({"part": part, "method": "`lwdock predict` CLI, sandboxed workers", "seconds": t_cli, "ratio": t_cli / t_inproc})
    rows.append({"part": part, "method": "`lwdock predict --trusted` CLI", "seconds": t_cli_trusted, "ratio": t_cli_trusted / t_inproc})
    for r in rows[-5:]:
        r["rows_per_s"] = n_rows / r["seconds"]


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    rows = []
    part1(rows)
    part2(rows)
    notes = (
        "Part 1: accuracy on 1000 held-out user rows, mean of 3 seeds; seconds = fit + predict "
        "(learnwares in-process). Labelled methods use the first 50 user rows. "
        "Part 2: best of 3 runs; ratio = time / in-process time measured in the same run; the CLI figures "
        "include interpreter start-up, reading the .npy input, starting 5 sandboxed workers and writing the output. "
        "Goal: `lwdock predict` within 1.5x of in-process."
    )
    report("reuse", "Reuse: reusers on the test market; lwdock predict throughput", rows,
           ["part", "method", "accuracy", "seconds", "ratio", "rows_per_s"], notes)


if __name__ == "__main__":
    main()
