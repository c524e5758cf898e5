"""Running learnwares: sandboxed workers (default) or trusted in-process models.

- ``open_predictors`` opens one persistent handle per learnware and keeps it for
  the whole job, so a model is loaded once, not once per batch.
- ``run_learnwares`` calls several handles on the same rows; sandboxed workers
  are called from threads at the same time (they are separate processes, so
  waiting on one does not block the others).
- ``stream`` cuts large inputs into chunks and shows a progress bar on stderr.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..check.envs import EnvManager
from ..check.runner import ModelWorker
from ..errors import LwdockError, ModelRuntimeError, PackageError, UsageError
from .base import InProcessPredictor

logger = logging.getLogger("lwdock")

DEFAULT_CHUNK = 20_000


def run_learnwares(predictors: Sequence[Any], X: np.ndarray) -> list[Any]:
    """Raw outputs of every predictor on ``X`` (concurrently for out-of-process workers)."""
    if len(predictors) > 1 and all(getattr(p, "concurrent", False) for p in predictors):
        with ThreadPoolExecutor(max_workers=len(predictors)) as pool:
            return list(pool.map(lambda p: _call(p, X), predictors))
    return [_call(p, X) for p in predictors]


def _call(p: Any, X: np.ndarray) -> Any:
    try:
        return p.predict(X)
    except LwdockError:
        raise
    except Exception as exc:  # noqa: BLE001 - a trusted model's own failure, reported as a runtime error
        name = getattr(p, "id", None) or type(p).__name__
        raise ModelRuntimeError(f"learnware {str(name)[:12]} failed: {type(exc).__name__}: {exc}") from exc


def stream(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, chunk_size: int = DEFAULT_CHUNK, what: str = "predict"):
    """``fn`` applied to row chunks of ``X`` and stacked; a progress bar when there is more than one chunk."""
    n = X.shape[0]
    if chunk_size <= 0:
        raise UsageError(f"chunk size must be positive, got {chunk_size}")
    if n <= chunk_size:
        return fn(X)
    parts = []
    with progress.bar(n, what) as bar:
        for start in range(0, n, chunk_size):
            part = X[start : start + chunk_size]
            parts.append(fn(np.ascontiguousarray(part)))
            bar.advance(part.shape[0])
    return np.concatenate(parts, axis=0)


# -- handles ---------------------------------------------------------------


class WorkerPredictor:
    """A learnware model in a sandboxed, persistent runner subprocess."""

    concurrent = True

    def __init__(self, worker: Any, id: str) -> None:
        self.worker = worker
        self.id = id
        self.output_kind = None

    def predict(self, X: np.ndarray) -> Any:
        return self.worker.predict(X)

    def __deepcopy__(self, memo: dict) -> WorkerPredictor:
        return self


def _load_trusted_model(package: Any, id: str) -> Any:
    """Import a learnware's model class in this process. Only for ``trusted=True``."""
    root = Path(package.root)
    module_file = root / (package.model_module or "__init__.py")
    if not module_file.is_file():
        raise PackageError(f"learnware {id[:12]}: model module {module_file.name} is missing")
    name = f"_lwdock_trusted_{id[:16]}"
    spec = importlib.util.spec_from_file_location(
        name, module_file, submodule_search_locations=[str(root)] if module_file.name == "__init__.py" else None
    )
    if spec is None or spec.loader is None:
        raise PackageError(f"learnware {id[:12]}: cannot import {module_file.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        cls = getattr(module, package.model_class)
        return cls(**dict(package.model_kwargs or {}))
    except Exception as exc:  # noqa: BLE001 - trusted code failing to load is a package problem
        sys.modules.pop(name, None)
        raise PackageError(f"learnware {id[:12]}: model could not be created: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def open_predictors(dock: Any, ids: Sequence[str], trusted: bool = False, env_manager: str = "venv", timeout: float = 600.0) -> Iterator[list[Any]]:
    """One handle per learnware id, closed on exit.

    ``trusted=False`` (the default) runs each model in the sandboxed runner, in the
    learnware's cached environment; ``trusted=True`` imports the model code into this process.
    ``timeout`` bounds one batch round trip in a worker.
    """
    packages = [dock.package(id) for id in ids]
    if trusted:
        yield [InProcessPredictor(_load_trusted_model(p, id), id=id) for p, id in zip(packages, ids)]
        return
    with contextlib.ExitStack() as stack:
        # workers start in parallel: each start waits on a subprocess importing its model
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(ids)))) as pool:
            futures = [pool.submit(_start_worker, dock, p, env_manager, timeout) for p in packages]
            errors = []
            workers = []
            for f in futures:
                try:
                    w = f.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below after the others are closed
                    errors.append(exc)
                    continue
                stack.callback(w.close)
                workers.append(w)
        if errors:
            raise errors[0]
        yield [WorkerPredictor(w, id) for w, id in zip(workers, ids)]


def _start_worker(dock: Any, package: Any, env_manager: str, timeout: float) -> Any:
    manager = EnvManager(dock.layout.envs, env_manager)
    env = manager.ensure(list(package.requirements or []))
    worker = ModelWorker(package.root, module=package.model_module, class_name=package.model_class,
                         kwargs=package.model_kwargs, python=env.python, timeout=timeout, workdir_base=dock.layout.tmp)
    return worker.start()
