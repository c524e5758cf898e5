"""Usability checks for a learnware package: :func:`run_checks` and :func:`check_zip`.

Each check reports ``{name, ok, reason}``; ``ok`` is None for a check that was
skipped because an earlier one it depends on failed. The status is ``usable``
(every check ran and passed), ``semantic-only`` (``run_model=False`` and
nothing failed) or ``invalid``. The model itself only ever runs in a
:class:`~lwdock.check.runner.ModelWorker`; nothing here imports learnware code.
"""

from __future__ import annotations

import json
import math
import os
import string
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LwdockError, NotFoundError
from ..format.semantic import validate_semantic
from ..format.semantic import value as semantic_value

USABLE, SEMANTIC_ONLY, INVALID = "usable", "semantic-only", "invalid"
PROBE_ROWS = 10


@dataclass
class CheckReport:
    status: str
    checks: list[dict] = field(default_factory=list)
    env: dict | None = None
    model: dict | None = None
    sandbox: dict | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != INVALID

    def failures(self) -> list[dict]:
        return [c for c in self.checks if c["ok"] is False]

    def summary(self) -> str:
        """One line: the status, and the first failure's reason."""
        fails = self.failures()
        return self.status if not fails else f"{self.status}: {fails[0]['name']}: {fails[0]['reason']}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CheckReport":
        return cls(**{k: data.get(k) for k in ("status", "checks", "env", "model", "sandbox")},
                   duration_s=float(data.get("duration_s", 0.0)))


class _Report:
    def __init__(self) -> None:
        self.checks: list[dict] = []

    def add(self, name: str, ok: bool | None, reason: str) -> bool:
        self.checks.append({"name": name, "ok": ok, "reason": " ".join(str(reason).split())[:1000]})
        return bool(ok)

    def skip(self, names: list[str], why: str) -> None:
        for n in names:
            self.add(n, None, f"skipped: {why}")


# -- semantic spec helpers ---------------------------------------------------------


def _first(spec: dict | None, key: str) -> str | None:
    return semantic_value(spec or {}, key)


def _dim(spec: dict | None, key: str) -> int | None:
    try:
        return int(spec[key]["Dimension"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


# -- stat spec ---------------------------------------------------------------------------


def load_spec_dim_and_self_distance(path: Path) -> tuple[int | None, float]:
    """``(dim, dist(spec, spec))`` for a statistical spec file."""
    from ..spec.specfile import load_spec

    spec = load_spec(path)
    return getattr(spec, "dim", None), float(spec.dist(spec))


# -- probes -------------------------------------------------------------------------


def make_probe(kind: str, input_shape: Any, seed: int = 0) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "Text":
        alphabet = np.array(list(string.ascii_letters + string.digits + string.punctuation))
        return np.array(["".join(rng.choice(alphabet, int(rng.integers(10, 1001)))) for _ in range(PROBE_ROWS)])
    shape = (PROBE_ROWS, *tuple(input_shape))
    if kind == "Image":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.standard_normal(shape)


def _data_kind(semantic: dict | None, package: Any) -> str:
    kind = _first(semantic, "Data")
    if kind in ("Table", "Image", "Text"):
        return kind
    for entry in getattr(package, "stat_specs", []) or []:
        k = str(getattr(entry, "kind", "")).capitalize()
        if k in ("Table", "Image", "Text"):
            return k
    return "Table"


def _inside(root: Path, rel: str) -> Path | None:
    full = (root / rel).resolve()
    return full if full.is_relative_to(root.resolve()) else None


# -- the checks ----------------------------------------------------------------------

_MODEL_CHECKS = ["model_instantiates", "input_shape", "predict", "output_shape", "task_output"]


def run_checks(package: Any, semantic: dict | None = None, *, env_manager: str = "venv",
               envs_dir: str | os.PathLike[str], run_model: bool = True, timeout: float = 60.0,
               memory_mb: int = 4096, cpu_seconds: int = 600) -> CheckReport:
    """Check ``package`` (a ``lwdock.format.package.Package``) and return a report.

    ``semantic`` overrides ``package.semantic``. With ``run_model=False`` only the
    semantic, file and spec checks run. The env is built (or reused) under
    ``envs_dir``; the model runs sandboxed with ``timeout`` seconds per call.
    """
    from . import sandbox

    t0 = time.perf_counter()
    rep = _Report()
    report = CheckReport(status=INVALID, sandbox=sandbox.enforcement() if run_model else None)
    sem_in = semantic if semantic is not None else getattr(package, "semantic", None)

    # 1. semantic spec
    sem: dict | None = None
    if sem_in is None:
        rep.add("semantic_spec", False, "no semantic specification (give --semantic FILE or include semantic_specification.json)")
    else:
        try:
            sem = validate_semantic(sem_in)
            rep.add("semantic_spec", True, f"valid ({_first(sem, 'Data')}, {_first(sem, 'Task')})")
        except LwdockError as exc:
            rep.add("semantic_spec", False, str(exc))
    sem_for_dims = sem

    # 2. files
    root = Path(package.root)
    missing = []
    model_file = _inside(root, package.model_module)
    if model_file is None:
        missing.append(f"{package.model_module} (outside the package)")
    elif not model_file.is_file():
        missing.append(package.model_module)
    spec_files: list[Path] = []
    for entry in package.stat_specs:
        p = _inside(root, entry.file_name)
        if p is None:
            missing.append(f"{entry.file_name} (outside the package)")
        elif not p.is_file():
            missing.append(entry.file_name)
        else:
            spec_files.append(p)
    if not package.stat_specs:
        missing.append("a statistical specification (learnware.yaml lists none)")
    files_ok = rep.add("files", not missing,
                       "missing: " + ", ".join(missing) if missing else f"model module and {len(spec_files)} spec file(s) present")

    # 3. stat spec self-distance (our own code on JSON data; no learnware code runs)
    spec_dim: int | None = None
    if spec_files:
        try:
            dims = []
            for p in spec_files:
                d, dist = load_spec_dim_and_self_distance(p)
                if not math.isfinite(dist):
                    raise ValueError(f"{p.name}: dist(spec, spec) = {dist}")
                dims.append(d)
            spec_dim = dims[0]
            rep.add("spec_self_distance", True, "finite for every spec")
        except (LwdockError, ValueError, KeyError, TypeError, OSError) as exc:
            rep.add("spec_self_distance", False, f"spec cannot be used: {exc}")
    else:
        rep.skip(["spec_self_distance"], "no spec file")

    if not run_model:
        report.status = INVALID if any(c["ok"] is False for c in rep.checks) else SEMANTIC_ONLY
        report.checks = rep.checks
        report.duration_s = time.perf_counter() - t0
        return report

    # 4. environment
    if not files_ok:
        rep.skip(["environment", *_MODEL_CHECKS], "package files are missing")
        return _finish(report, rep, t0)
    from .envs import EnvManager

    try:
        manager = EnvManager(envs_dir, env_manager)
        env = manager.ensure(list(getattr(package, "requirements", []) or []))
        manager.touch(env.key)
        report.env = env.to_dict()
        rep.add("environment", True, f"env {env.key} ({'built in %.1fs' % env.built_s if env.created else 'cached'})")
    except LwdockError as exc:
        rep.add("environment", False, str(exc))
        rep.skip(_MODEL_CHECKS, "the environment could not be built")
        return _finish(report, rep, t0)

    _model_checks(rep, report, package, env.python, sem, sem_for_dims, spec_dim, timeout, memory_mb, cpu_seconds)
    return _finish(report, rep, t0)


def _finish(report: CheckReport, rep: _Report, t0: float) -> CheckReport:
    report.checks = rep.checks
    done = all(c["ok"] is True for c in rep.checks)
    report.status = USABLE if done else INVALID
    report.duration_s = time.perf_counter() - t0
    return report


def _model_checks(rep: _Report, report: CheckReport, package: Any, python: str, sem: dict | None,
                  sem_dims: dict | None, spec_dim: int | None, timeout: float, memory_mb: int, cpu_seconds: int) -> None:
    import numpy as np

    from ..errors import ModelRuntimeError
    from .runner import ModelWorker

    kind = _data_kind(sem, package)
    task = _first(sem, "Task")
    with tempfile.TemporaryDirectory(prefix="lwdock-check-") as base:
        worker = ModelWorker(package.root, module=package.model_module, class_name=package.model_class,
                             kwargs=package.model_kwargs, python=python, timeout=timeout, start_timeout=timeout,
                             memory_mb=memory_mb, cpu_seconds=cpu_seconds, workdir_base=base)
        try:
            worker.start()
        except ModelRuntimeError as exc:
            rep.add("model_instantiates", False, str(exc))
            rep.skip(_MODEL_CHECKS[1:], "the model did not instantiate")
            return
        with worker:
            info = worker.info()
            report.model = info
            if not info.get("has_predict"):
                rep.add("model_instantiates", False, f"{info.get('class')} has no predict method")
                rep.skip(_MODEL_CHECKS[1:], "the model has no predict")
                return
            rep.add("model_instantiates", True, f"{info.get('class')} instantiated")
            in_shape, out_shape = info.get("input_shape"), info.get("output_shape")

            # input shape against semantic Input.Dimension and the spec dim
            if kind == "Text" and in_shape is None:
                rep.add("input_shape", True, "text model (input_shape None)")
            elif not isinstance(in_shape, list):
                rep.add("input_shape", False, f"input_shape must be a tuple of ints, got {in_shape!r}")
                rep.skip(_MODEL_CHECKS[2:], "no usable input_shape")
                return
            else:
                problems = []
                sem_dim = _dim(sem_dims, "Input")
                if kind == "Table":
                    if sem_dim is not None and in_shape != [sem_dim]:
                        problems.append(f"input_shape {tuple(in_shape)} != semantic Input.Dimension {sem_dim}")
                    if spec_dim is not None and in_shape != [spec_dim]:
                        problems.append(f"input_shape {tuple(in_shape)} != spec dimension {spec_dim}")
                rep.add("input_shape", not problems, "; ".join(problems) or f"input_shape {tuple(in_shape)} agrees")
                if problems:
                    rep.skip(_MODEL_CHECKS[2:], "input_shape disagrees")
                    return

            # predict on probes
            probe = make_probe(kind, in_shape or ())
            try:
                out = worker.predict(probe)
            except ModelRuntimeError as exc:
                rep.add("predict", False, str(exc))
                rep.skip(_MODEL_CHECKS[3:], "predict failed")
                return
            if out.ndim == 0 or len(out) != PROBE_ROWS:
                rep.add("predict", False, f"predict on {PROBE_ROWS} {kind.lower()} rows returned {out.shape[0] if out.ndim else 'a scalar'} rows")
                rep.skip(_MODEL_CHECKS[3:], "wrong number of rows")
                return
            rep.add("predict", True, f"{PROBE_ROWS} {kind.lower()} probe rows -> {out.shape} {out.dtype}")
            pytype = getattr(worker, "last_pytype", "") or ""

        # output shape and dtype (worker closed; only plain arrays from here)
        must = out_shape is not None or task in ("Classification", "Regression", "Feature Extraction")
        out2 = out.reshape(-1, 1) if out.ndim == 1 else out
        problems = []
        if not (pytype == "numpy.ndarray" or pytype.startswith("torch.")):
            problems.append(f"predict returned {pytype}, not an ndarray or Tensor")
        if out.dtype.kind not in "biuf":
            problems.append(f"output dtype {out.dtype} is not numeric")
        elif out.dtype.kind == "f" and not np.isfinite(out).all():
            problems.append("output has NaN or inf")
        if must:
            if out_shape is None or not isinstance(out_shape, list):
                problems.append(f"output_shape must be a tuple of ints for task {task}, got {out_shape!r}")
            elif list(out2.shape[1:]) != out_shape:
                problems.append(f"each output row has shape {tuple(out2.shape[1:])}, output_shape says {tuple(out_shape)}")
        rep.add("output_shape", not problems, "; ".join(problems) or f"rows of shape {tuple(out2.shape[1:])}, dtype {out.dtype}")
        if problems:
            rep.skip(["task_output"], "output shape is wrong")
            return
        rep.add("task_output", *_task_output(task, out2, out_shape, _dim(sem_dims, "Output")))


def _task_output(task: str | None, out: Any, out_shape: list | None, out_dim: int | None) -> tuple[bool, str]:
    import numpy as np

    if task not in ("Classification", "Regression"):
        return True, f"no output rule for task {task}"
    if out_dim is None:
        return False, f"semantic spec declares no Output.Dimension for {task}"
    width = out_shape[0] if out_shape else out.shape[1]
    if task == "Regression":
        ok = width == out_dim
        return ok, f"output width {width} {'==' if ok else '!='} Output.Dimension {out_dim}"
    if width == 1:
        labels = out.reshape(-1)
        integral = bool(np.all(np.equal(np.mod(labels, 1), 0))) if labels.dtype.kind == "f" else True
        in_range = bool(np.all((labels >= 0) & (labels < out_dim)))
        if integral and in_range:
            return True, f"labels in [0, {out_dim})"
        return False, f"labels must be integers in [0, {out_dim}); got values from {labels.min()} to {labels.max()}"
    ok = width == out_dim
    return ok, f"probability width {width} {'==' if ok else '!='} Output.Dimension {out_dim}"


# -- zip entry point (the CLI's one call) ---------------------------------------------


def check_zip(zip_path: str | os.PathLike[str], semantic_path: str | os.PathLike[str] | None = None, *,
              envs_dir: str | os.PathLike[str], env_manager: str = "venv", run_model: bool = True,
              timeout: float = 60.0, memory_mb: int = 4096) -> CheckReport:
    """Open ``zip_path`` in a temporary directory and run :func:`run_checks` on it.

    Nothing is stored. A package that cannot be opened gives an ``invalid``
    report with a failed ``package`` check rather than an exception.
    """
    from ..errors import PackageError
    from ..format.package import open_package

    zp = Path(zip_path)
    if not zp.is_file():
        raise NotFoundError(f"no such file: {zp}")
    semantic = None
    bad_semantic = None
    if semantic_path is not None:
        sp = Path(semantic_path)
        if not sp.is_file():
            raise NotFoundError(f"no such file: {sp}")
        try:
            semantic = json.loads(sp.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            bad_semantic = f"{sp.name} is not valid JSON: {exc}"
    with tempfile.TemporaryDirectory(prefix="lwdock-unpack-") as tmp:
        t0 = time.perf_counter()
        try:
            package = open_package(zp, Path(tmp) / "pkg")
        except PackageError as exc:
            return CheckReport(status=INVALID, checks=[{"name": "package", "ok": False, "reason": str(exc)}],
                               duration_s=time.perf_counter() - t0)
        report = run_checks(package, semantic, env_manager=env_manager, envs_dir=envs_dir, run_model=run_model,
                            timeout=timeout, memory_mb=memory_mb)
        report.checks.insert(0, {"name": "package", "ok": True, "reason": f"{zp.name} opened"})
        if bad_semantic:
            report.checks = [c if c["name"] != "semantic_spec" else {"name": "semantic_spec", "ok": False,
                                                                      "reason": bad_semantic} for c in report.checks]
            report.status = INVALID
        return report
