"""Usability checks for a learnware package: :func:`run_checks` and :func:`check_zip`.

Each check reports ``{name, ok, reason}``; ``ok`` is None for a check that was
skipped because an earlier one it depends on failed. The status is ``usable``
(every check ran and passed), ``semantic-only`` (``run_model=False`` and
nothing failed) or ``invalid``. The model itself only ever runs in a
:class:`~lwdock.check.runner.ModelWorker`; nothing here imports learnware code.

The checks, in order: ``semantic_spec``, ``files``, ``spec_self_distance`` (our own code on
JSON data), then with ``run_model``: ``environment`` and the model checks
(``model_instantiates``, ``input_shape``, ``predict``, ``output_shape``, ``task_output``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._scratch import clean_stale, new_dir
from ..config import default_cache_dir
from ..errors import LwdockError, ModelRuntimeError, NotFoundError, PackageError
from ..format.package import Package, open_package
from ..format.semantic import from_flags, validate
from ..records import INVALID, SEMANTIC_ONLY, USABLE, CheckReport, Semantic
from .sandbox import Limits, describe, mode_for, require
from .envs import EnvManager
from .runner import ModelWorker

# numpy (probes and output checks) is imported where it is used: the store imports this module,
# and `lwdock list` must not pay for numpy (tests/test_imports.py).

__all__ = ["CheckReport", "INVALID", "SEMANTIC_ONLY", "USABLE", "check_zip", "make_probe", "run_checks"]

PROBE_ROWS = 10
_MODEL_CHECKS = ["model_instantiates", "input_shape", "predict", "output_shape", "task_output"]


@dataclass(frozen=True)
class RunLimits:
    """How the model runs while it is checked: seconds per call, memory, CPU time, the sandbox
    mode (:func:`lwdock.check.sandbox.mode_for`) and where its host directory goes."""

    timeout: float = 60.0
    memory_mb: int = 4096
    cpu_seconds: int = 600
    sandbox: str = "kernel"
    scratch_dir: str | os.PathLike[str] | None = None


class _Report:
    def __init__(self) -> None:
        self.checks: list[dict] = []

    def add(self, name: str, ok: bool | None, reason: str) -> bool:
        self.checks.append({"name": name, "ok": ok, "reason": " ".join(str(reason).split())[:1000]})
        return bool(ok)

    def skip(self, names: list[str], why: str) -> None:
        for n in names:
            self.add(n, None, f"skipped: {why}")

    @property
    def failed(self) -> bool:
        return any(c["ok"] is False for c in self.checks)


# -- stat spec ---------------------------------------------------------------------------


def load_spec_dim_and_self_distance(path: Path) -> tuple[int | None, float]:
    """``(dim, dist(spec, spec))`` for a statistical spec file."""
    from ..spec.specfile import load_spec  # numpy: the store imports this module, and `lwdock list` must not pay
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


def _data_kind(semantic: Semantic | None, package: Package) -> str:
    kind = semantic.data_type if semantic is not None else None
    if kind in ("Table", "Image", "Text"):
        return kind
    for entry in package.stat_specs:
        k = entry.kind.capitalize()
        if k in ("Table", "Image", "Text"):
            return k
    return "Table"


def _inside(root: Path, rel: str) -> Path | None:
    full = (root / rel).resolve()
    return full if full.is_relative_to(root.resolve()) else None


# -- the checks ----------------------------------------------------------------------


def run_checks(package: Package, semantic: dict | None = None, *, env_manager: str = "venv",
               envs_dir: str | os.PathLike[str], run_model: bool = True, timeout: float = 60.0,
               memory_mb: int = 4096, cpu_seconds: int = 600, sandbox: str | None = None,
               scratch_dir: str | os.PathLike[str] | None = None,
              semantic_flags: dict[str, Any] | None = None) -> CheckReport:
    """Check ``package`` and return a report.

    ``semantic`` overrides ``package.semantic``. With ``run_model=False`` only the
    semantic, file and spec checks run. The env is built (or reused) under
    ``envs_dir``; the model runs in the ``sandbox`` mode (see
    :func:`lwdock.check.sandbox.mode_for`) with ``timeout`` seconds per call, its
    host directory under ``scratch_dir`` (``<dock>/tmp`` in a dock). Raises
    SandboxUnavailableError, before anything is built, when the model would have
    to run without the isolation asked for.
    """
    t0 = time.perf_counter()
    rep = _Report()
    report = CheckReport(status=INVALID)
    limits = RunLimits(timeout=timeout, memory_mb=memory_mb, cpu_seconds=cpu_seconds, sandbox=mode_for(sandbox),
                       scratch_dir=scratch_dir)
    if run_model:
        report.sandbox = describe(limits.sandbox, require(limits.sandbox),
                                  Limits(memory_mb=memory_mb, cpu_seconds=cpu_seconds))
    sem = _check_semantic(rep, semantic if semantic is not None else package.semantic)
    files_ok, spec_files = _check_files(rep, package)
    spec_dim = _check_specs(rep, spec_files)
    if not run_model:
        return _finish(report, rep, t0, SEMANTIC_ONLY)
    if not files_ok:
        rep.skip(["environment", *_MODEL_CHECKS], "package files are missing")
        return _finish(report, rep, t0)
    python = _check_environment(rep, report, package, envs_dir, env_manager)
    if python is not None:
        _ModelChecks(rep, report, package, sem, spec_dim).run(python, limits)
    return _finish(report, rep, t0)


def _finish(report: CheckReport, rep: _Report, t0: float, passed: str = USABLE) -> CheckReport:
    """The status: ``passed`` when no check failed (and, for a model run, none was skipped)."""
    report.checks = rep.checks
    if passed == USABLE:
        report.status = USABLE if all(c["ok"] is True for c in rep.checks) else INVALID
    else:
        report.status = INVALID if rep.failed else passed
    report.duration_s = time.perf_counter() - t0
    return report


def _check_semantic(rep: _Report, raw: dict | None) -> Semantic | None:
    if raw is None:
        rep.add("semantic_spec", False,
                "no semantic specification (give --semantic FILE or include semantic_specification.json)")
        return None
    try:
        sem = Semantic.from_dict(validate(raw))
    except LwdockError as exc:
        rep.add("semantic_spec", False, str(exc))
        return None
    rep.add("semantic_spec", True, f"valid ({sem.data_type}, {sem.task})")
    return sem


def _check_files(rep: _Report, package: Package) -> tuple[bool, list[Path]]:
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
    ok = rep.add("files", not missing, "missing: " + ", ".join(missing) if missing
                 else f"model module and {len(spec_files)} spec file(s) present")
    return ok, spec_files


def _check_specs(rep: _Report, spec_files: list[Path]) -> int | None:
    """dist(spec, spec) must be finite for every spec; returns the first spec's dimension."""
    if not spec_files:
        rep.skip(["spec_self_distance"], "no spec file")
        return None
    try:
        dims = []
        for p in spec_files:
            d, dist = load_spec_dim_and_self_distance(p)
            if not math.isfinite(dist):
                raise ValueError(f"{p.name}: dist(spec, spec) = {dist}")
            dims.append(d)
    except (LwdockError, ValueError, KeyError, TypeError, OSError) as exc:
        rep.add("spec_self_distance", False, f"spec cannot be used: {exc}")
        return None
    rep.add("spec_self_distance", True, "finite for every spec")
    return dims[0]


def _check_environment(rep: _Report, report: CheckReport, package: Package, envs_dir: str | os.PathLike[str],
                       env_manager: str) -> str | None:
    """Build (or reuse) the learnware's env; its Python, or None when it cannot be built."""
    try:
        manager = EnvManager(envs_dir, env_manager)
        env = manager.ensure(list(package.requirements or []))
        manager.touch(env.key)
    except LwdockError as exc:
        rep.add("environment", False, str(exc))
        rep.skip(_MODEL_CHECKS, "the environment could not be built")
        return None
    report.env = env.to_dict()
    rep.add("environment", True, f"env {env.key} ({'built in %.1fs' % env.built_s if env.created else 'cached'})")
    return env.python


class _ModelChecks:
    """The checks that run the model in a sandboxed worker, in order; each failure skips the rest."""

    def __init__(self, rep: _Report, report: CheckReport, package: Package, sem: Semantic | None,
                 spec_dim: int | None) -> None:
        self.rep, self.report, self.package = rep, report, package
        self.kind = _data_kind(sem, package)
        self.task = sem.task if sem is not None else None
        self.sem_in_dim = sem.input_dim if sem is not None else None
        self.sem_out_dim = sem.output_dim if sem is not None else None
        self.spec_dim = spec_dim

    def _fail(self, name: str, reason: str, first_skipped: int, why: str) -> None:
        self.rep.add(name, False, reason)
        self.rep.skip(_MODEL_CHECKS[first_skipped:], why)

    def run(self, python: str, limits: RunLimits) -> None:
        pkg = self.package
        worker = ModelWorker(pkg.root, module=pkg.model_module, class_name=pkg.model_class,
                             kwargs=pkg.model_kwargs, python=python, timeout=limits.timeout,
                             start_timeout=limits.timeout, memory_mb=limits.memory_mb,
                             cpu_seconds=limits.cpu_seconds, sandbox=limits.sandbox,
                             workdir_base=limits.scratch_dir)
        try:
            worker.start()
        except ModelRuntimeError as exc:
            self._fail("model_instantiates", str(exc), 1, "the model did not instantiate")
            return
        with worker:
            outcome = self._in_worker(worker)
        if outcome is not None:
            self._check_output(*outcome)

    def _in_worker(self, worker: ModelWorker) -> tuple[Any, list | None, str] | None:
        """model_instantiates, input_shape and predict; (output, output_shape, python type) or None."""
        info = worker.info()
        self.report.model = info
        if not info.get("has_predict"):
            self._fail("model_instantiates", f"{info.get('class')} has no predict method", 1, "the model has no predict")
            return None
        self.rep.add("model_instantiates", True, f"{info.get('class')} instantiated")
        in_shape = info.get("input_shape")
        if not self._check_input_shape(in_shape):
            return None
        try:
            out = worker.predict(make_probe(self.kind, in_shape or ()))  # the runner checks one row per probe row
        except ModelRuntimeError as exc:
            self._fail("predict", str(exc), 3, "predict failed")
            return None
        self.rep.add("predict", True, f"{PROBE_ROWS} {self.kind.lower()} probe rows -> {out.shape} {out.dtype}")
        return out, info.get("output_shape"), getattr(worker, "last_pytype", "") or ""

    def _check_input_shape(self, in_shape: Any) -> bool:
        """input_shape against the semantic Input.Dimension and the spec's dimension."""
        if self.kind == "Text" and in_shape is None:
            return self.rep.add("input_shape", True, "text model (input_shape None)")
        if not isinstance(in_shape, list):
            self._fail("input_shape", f"input_shape must be a tuple of ints, got {in_shape!r}", 2, "no usable input_shape")
            return False
        problems = []
        if self.kind == "Table":
            if self.sem_in_dim is not None and in_shape != [self.sem_in_dim]:
                problems.append(f"input_shape {tuple(in_shape)} != semantic Input.Dimension {self.sem_in_dim}")
            if self.spec_dim is not None and in_shape != [self.spec_dim]:
                problems.append(f"input_shape {tuple(in_shape)} != spec dimension {self.spec_dim}")
        if problems:
            self._fail("input_shape", "; ".join(problems), 2, "input_shape disagrees")
            return False
        return self.rep.add("input_shape", True, f"input_shape {tuple(in_shape)} agrees")

    def _check_output(self, out: Any, out_shape: list | None, pytype: str) -> None:
        """output_shape and task_output, on plain arrays once the worker is closed."""
        import numpy as np

        task = self.task
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
        if problems:
            self._fail("output_shape", "; ".join(problems), 4, "output shape is wrong")
            return
        self.rep.add("output_shape", True, f"rows of shape {tuple(out2.shape[1:])}, dtype {out.dtype}")
        self.rep.add("task_output", *_task_output(task, out2, out_shape, self.sem_out_dim))


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
              timeout: float = 60.0, memory_mb: int = 4096, sandbox: str | None = None,
              scratch_dir: str | os.PathLike[str] | None = None,
              semantic_flags: dict[str, Any] | None = None) -> CheckReport:
    """Open ``zip_path`` in a scratch directory and run :func:`run_checks` on it.

    Nothing is stored. A package that cannot be opened gives an ``invalid``
    report with a failed ``package`` check rather than an exception. Scratch
    goes under ``scratch_dir`` (give ``<dock>/tmp`` to let ``lwdock doctor`` clean
    what a killed check leaves); by default under the per-user cache directory,
    whose stale entries are removed here first.
    """
    zp = Path(zip_path)
    if not zp.is_file():
        raise NotFoundError(f"no such file: {zp}")
    semantic, bad_semantic = _read_semantic_file(semantic_path)
    if scratch_dir is None:
        scratch_dir = default_cache_dir() / "tmp"
        clean_stale(scratch_dir)
    tmp = new_dir(scratch_dir, "check")
    try:
        t0 = time.perf_counter()
        try:
            package = open_package(zp, tmp / "pkg")
        except PackageError as exc:
            return CheckReport(status=INVALID, checks=[{"name": "package", "ok": False, "reason": str(exc)}],
                               duration_s=time.perf_counter() - t0)
        if semantic_flags and not bad_semantic:  # as submit: the flags override single keys
            semantic = from_flags(base=semantic if semantic is not None else package.semantic, **semantic_flags)
        report = run_checks(package, semantic, env_manager=env_manager, envs_dir=envs_dir, run_model=run_model,
                            timeout=timeout, memory_mb=memory_mb, sandbox=sandbox, scratch_dir=tmp)
        report.checks.insert(0, {"name": "package", "ok": True, "reason": f"{zp.name} opened"})
        if bad_semantic:
            report.checks = [c if c["name"] != "semantic_spec" else {"name": "semantic_spec", "ok": False,
                                                                      "reason": bad_semantic} for c in report.checks]
            report.status = INVALID
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_semantic_file(path: str | os.PathLike[str] | None) -> tuple[dict | None, str | None]:
    """(semantic spec, None), or (None, why it cannot be read) for a file that is not JSON."""
    if path is None:
        return None, None
    sp = Path(path)
    if not sp.is_file():
        raise NotFoundError(f"no such file: {sp}")
    try:
        return json.loads(sp.read_text(encoding="utf-8")), None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return None, f"{sp.name} is not valid JSON: {exc}"
