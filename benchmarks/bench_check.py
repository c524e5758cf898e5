"""Usability checks: cold and warm env, sandbox cost, and runner throughput against in-process predict.

Usage: python benchmarks/bench_check.py [--requirement SPEC] [--full-plain] [--starts N]

* cold: ``check_zip`` of a small sklearn learnware whose requirements.txt is
  ``numpy``, ``scikit-learn`` and one extra package, with an empty envs dir
  (chained venv + pip of the extra only), against a plain ``python -m venv`` +
  ``pip install`` of the same extra package, in the same run. The extra package
  is a tiny wheel built here (offline); ``--requirement six`` uses PyPI instead.
  ``--full-plain`` also times a plain venv installing numpy + scikit-learn too
  (downloads; what a non-chained env really needs).
* warm: the same check again (env cached), in-process and as a ``lwdock check``
  subprocess (interpreter start and imports included). Goal: <= 2 s.
* throughput: 100,000 rows through a started worker vs ``predict`` in this
  process, for a cheap and a heavier sklearn model. Goal: overhead < 20%.
* isolation: worker start-up (spawn to "ready", the sklearn learnware above)
  and the warm check under the kernel sandbox (bubblewrap), against the path
  used before it (``unshare --net --map-root-user`` + rlimits, rebuilt here on
  top of the weak mode) and the weak mode alone, interleaved in one run.
  Goal: the kernel sandbox adds <= 0.2 s per worker start.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import report, timed  # noqa: E402

MODEL = '''
import os, pickle
from learnware.model import BaseModel


class Model(BaseModel):
    def __init__(self):
        super().__init__(input_shape=(8,), output_shape=(1,))
        with open(os.path.join(os.path.dirname(__file__), "model.pkl"), "rb") as f:
            self.clf = pickle.load(f)

    def predict(self, X):
        return self.clf.predict(X)
'''
YAML = """model: {class_name: Model, module_path: __init__.py}
stat_specifications:
  - {module_path: learnware.specification, class_name: RKMETableSpecification, file_name: stat.json}
"""


ISOLATION_NOTE = ("Worker start: spawn to the model's 'ready' (interpreter, numpy, scikit-learn, unpickling), "
                  "modes interleaved in one run.")


def tiny_wheel(dest: Path) -> Path:
    name, ver = "lwbench_extra", "1.0"
    dist = f"{name}-{ver}.dist-info"
    files = {f"{name}/__init__.py": "X = 1\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: lwbench-extra\nVersion: {ver}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    rec = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},{len(t)}"
           for p, t in files.items()]
    files[f"{dist}/RECORD"] = "\n".join([*rec, f"{dist}/RECORD,,"]) + "\n"
    whl = dest / f"{name}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for p, t in files.items():
            zf.writestr(p, t)
    return whl


def make_zip(dest: Path, extra_req: str) -> Path:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lwdock.spec.rkme_table import RKMETableSpec
    from lwdock.spec.specfile import table_to_dict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 8))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    spec = RKMETableSpec(K=20, random_state=0).fit(X)
    sem = {"Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Classification"]},
           "Library": {"Type": "Class", "Values": ["Scikit-learn"]}, "Scenario": {"Type": "Tag", "Values": ["Others"]},
           "License": {"Type": "Class", "Values": ["MIT"]}, "Name": {"Type": "String", "Values": "bench"},
           "Description": {"Type": "String", "Values": "bench model"},
           "Input": {"Dimension": 8, "Description": {}}, "Output": {"Dimension": 2, "Description": {}}}
    z = dest / "bench.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("learnware.yaml", YAML)
        zf.writestr("__init__.py", MODEL)
        zf.writestr("model.pkl", pickle.dumps(clf))
        zf.writestr("stat.json", json.dumps(table_to_dict(spec)))
        zf.writestr("requirements.txt", f"numpy\nscikit-learn\n{extra_req}\n")
        zf.writestr("semantic_specification.json", json.dumps(sem))
    return z


def plain_venv(dest: Path, reqs: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(dest)], check=True, capture_output=True)
    subprocess.run([str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
                   check=True, capture_output=True, timeout=900)
    return time.perf_counter() - t0


def throughput(tmp: Path, rows: list[dict]) -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from lwdock.check.runner import ModelWorker

    rng = np.random.default_rng(1)
    Xtr = rng.normal(size=(2000, 20))
    ytr = (Xtr[:, :3].sum(axis=1) > 0).astype(int)
    X = rng.normal(size=(100_000, 20))
    models = {"LogisticRegression": LogisticRegression().fit(Xtr, ytr),
              "RandomForest(50 trees)": RandomForestClassifier(n_estimators=50, random_state=0).fit(Xtr, ytr)}
    for name, clf in models.items():
        root = tmp / f"m_{len(rows)}"
        root.mkdir()
        (root / "__init__.py").write_text(MODEL.replace("(8,)", "(20,)"))
        (root / "model.pkl").write_bytes(pickle.dumps(clf))
        t_in, y_in = timed(lambda: clf.predict(X), repeat=5)
        t0 = time.perf_counter()
        with ModelWorker(root, timeout=300) as w:
            start = time.perf_counter() - t0
            t_w, y_w = timed(lambda: w.predict(X), repeat=5)
        assert np.array_equal(y_in, y_w)
        rows.append({"case": f"100k rows x 20, {name}: in-process predict", "seconds": t_in})
        rows.append({"case": f"100k rows x 20, {name}: through the worker", "seconds": t_w,
                     "ratio": t_w / t_in, "goal": "overhead < 20%",
                     "met": (t_w - t_in) / t_in < 0.20,
                     "note": f"worker start {start:.2f}s, not included; overhead {1000 * (t_w - t_in):.1f} ms"})


@contextlib.contextmanager
def _old_path():
    """Weak mode behind ``unshare --net --map-root-user``: what a worker start cost before bubblewrap."""
    from lwdock.check import sandbox

    unshare = shutil.which("unshare")
    real = sandbox._spawn
    sandbox._spawn = lambda argv, **kw: real([unshare, "--net", "--map-root-user", *argv], **kw)
    try:
        yield
    finally:
        sandbox._spawn = real


def _with_mode(mode: str):  # type: ignore[no-untyped-def]
    """(context, sandbox mode) for "kernel", "weak" and "old" (the pre-bubblewrap path)."""
    return (_old_path() if mode == "old" else contextlib.nullcontext()), ("weak" if mode == "old" else mode)


TRIVIAL = """
class Model:
    input_shape, output_shape = (8,), (1,)

    def predict(self, X):
        return X[:, 0]
"""


def _starts(roots: dict[str, Path], python: str, modes: list[str], rounds: int, work: Path) -> dict:
    """{(model, mode): [seconds per round]}: spawn to 'ready', every mode once per round, interleaved."""
    from lwdock.check.runner import ModelWorker

    out: dict = {(name, m): [] for name in roots for m in modes}
    for _ in range(rounds):  # interleaved, so machine noise spreads over every mode alike
        for name, root in roots.items():
            for m in modes:
                ctx, mode = _with_mode(m)
                with ctx:
                    w = ModelWorker(root, python=python, sandbox=mode, workdir_base=work)
                    t0 = time.perf_counter()
                    w.start()
                    out[name, m].append(time.perf_counter() - t0)
                    w.close()
    return out


def isolation(tmp: Path, z: Path, envs: Path, rows: list[dict], rounds: int) -> None:
    import logging
    import statistics

    from lwdock.check import sandbox
    from lwdock.check.checks import check_zip
    from lwdock.format.package import open_package

    logging.getLogger("lwdock").setLevel(logging.ERROR)  # the weak mode warns on every start
    os.environ["LWDOCK_FORK_SERVER"] = "0"  # fresh kernel workers here; bench_batch.py times the fork server
    sandbox.probe.cache_clear()
    t0 = time.perf_counter()
    tool = sandbox.probe()
    probe_s = time.perf_counter() - t0
    if isinstance(tool, str):
        rows.append({"case": "isolation: kernel sandbox unavailable here", "note": tool})
        return
    trivial = tmp / "trivial"
    trivial.mkdir()
    (trivial / "__init__.py").write_text(TRIVIAL)
    roots = {"numpy-only model": trivial, "the sklearn learnware": open_package(z, tmp / "iso-pkg").root}
    modes = ["old", "weak", "kernel"]
    names = {"old": "before (unshare --net + rlimits)", "weak": "--sandbox weak (rlimits only)",
             "kernel": f"--sandbox kernel (bubblewrap, {tool.style})"}
    times = _starts(roots, check_zip(z, envs_dir=envs).env["python"], modes, rounds, tmp / "work")
    for name in roots:
        base = statistics.median(times[name, "old"])
        for m in modes:
            med = statistics.median(times[name, m])
            rows.append({"case": f"worker start, {name}: {names[m]}", "seconds": med, "ratio": med / base,
                         "note": f"median of {rounds}; min {min(times[name, m]):.3f}"})
        diffs = [k - o for k, o in zip(times[name, "kernel"], times[name, "old"])]
        added = statistics.median(diffs)
        q = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [added, added, added]
        rows.append({"case": f"added per worker start by the kernel sandbox, {name}", "seconds": added,
                     "goal": "<= 0.2 s", "met": added <= 0.2,
                     "note": f"median of per-round differences (kernel - before), quartiles {q[0]:.3f}..{q[2]:.3f}; "
                             f"plus {probe_s:.3f}s once per process (probe, cached)"})
    warm = {}
    for m in modes:
        ctx, mode = _with_mode(m)
        with ctx:
            warm[m], _ = timed(lambda mode=mode: check_zip(z, envs_dir=envs, sandbox=mode), repeat=3)
        rows.append({"case": f"warm check_zip: {names[m]}", "seconds": warm[m], "ratio": warm[m] / warm["old"],
                     "note": "best of 3"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requirement", help="extra requirement from an index (default: a local tiny wheel)")
    ap.add_argument("--full-plain", action="store_true", help="also time a plain venv installing numpy + scikit-learn")
    ap.add_argument("--starts", type=int, default=11, help="rounds of worker starts (every mode once per round)")
    ap.add_argument("--only-isolation", action="store_true", help="time only the isolation rows")
    args = ap.parse_args()

    from lwdock.check.checks import check_zip

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lwdock-bench-") as t:
        tmp = Path(t)
        extra = args.requirement or f"lwbench-extra @ {tiny_wheel(tmp).as_uri()}"
        z = make_zip(tmp, extra)

        envs = tmp / "envs"
        if args.only_isolation:
            isolation(tmp, z, envs, rows, args.starts)
            report("check_isolation", "Sandbox cost: worker start and warm check", rows,
                   ["case", "seconds", "ratio", "goal", "met", "note"], notes=ISOLATION_NOTE)
            return
        t0 = time.perf_counter()
        rep = check_zip(z, envs_dir=envs)
        cold = time.perf_counter() - t0
        if rep.status != "usable":
            raise SystemExit(f"benchmark learnware is not usable: {rep.summary()}")
        build = rep.env["built_s"]
        plain = plain_venv(tmp / "plain", [extra])
        rows.append({"case": "cold: check_zip, chained venv + pip of 1 extra (checks included)", "seconds": cold,
                     "note": f"env build {build:.2f}s"})
        rows.append({"case": "plain python -m venv + pip install of the same 1 extra (no checks)", "seconds": plain,
                     "ratio": plain / cold})
        if args.full_plain:
            full = plain_venv(tmp / "plain-full", ["numpy", "scikit-learn", extra])
            rows.append({"case": "plain venv + pip install numpy scikit-learn + extra (no checks)", "seconds": full,
                         "ratio": full / cold})

        warm, rep2 = timed(lambda: check_zip(z, envs_dir=envs), repeat=3)
        rows.append({"case": "warm: check_zip, cached env (in-process)", "seconds": warm, "goal": "<= 2 s",
                     "met": warm <= 2.0})
        exe = shutil.which("lwdock") or str(Path(sys.executable).parent / "lwdock")
        cli, _ = timed(lambda: subprocess.run([exe, "--dock", str(tmp), "check", str(z), "--json"], check=True,
                                              capture_output=True), repeat=3)
        rows.append({"case": "warm: `lwdock check ZIP --json` subprocess, end to end", "seconds": cli, "goal": "<= 2 s",
                     "met": cli <= 2.0})
        throughput(tmp, rows)
        isolation(tmp, z, envs, rows, args.starts)

    report("check", "Usability checks: env build, warm check, runner throughput", rows,
           ["case", "seconds", "ratio", "goal", "met", "note"],
           notes="ratio = this row's time / the row above it (cold: plain / chained; throughput: worker / in-process; "
                 "isolation: this mode / the pre-bubblewrap path). Best of 3 (warm) or 5 (throughput) runs; cold rows "
                 "run once. " + ISOLATION_NOTE)


if __name__ == "__main__":
    main()
