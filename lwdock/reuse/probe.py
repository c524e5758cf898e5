"""One model run on a few rows, for the dock's own bookkeeping (the hetero index's column
importance, :mod:`lwdock.hetero.importance`).

The Dock's listeners run inside a submit, before the index lists the new learnware, so the
model is started from its unpacked copy (content hashes checked against the blob first,
re-extracted when they differ) rather than through the index, in the sandboxed runner and the
learnware's cached environment, like every other model run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..check.envs import EnvManager
from ..check.runner import ModelWorker
from ..format.package import parse_package
from ..records import Entry


def predict_once(dock: Any, entry: Entry, X: np.ndarray, *, env_manager: str = "venv", timeout: float = 120.0) -> Any:
    """The raw output of ``entry``'s model on ``X`` (one sandboxed worker, started and stopped)."""
    if dock.unpacked_state(entry.id) != "ok":
        dock.rebuild_unpacked(entry.id)
    package = parse_package(Path(dock.layout.unpacked_dir(entry.id)))
    env = EnvManager(dock.layout.envs, env_manager).ensure(list(package.requirements or []))
    with ModelWorker(package.root, module=package.model_module, class_name=package.model_class,
                     kwargs=package.model_kwargs, python=env.python, timeout=timeout,
                     workdir_base=dock.layout.tmp) as worker:
        return worker.predict(X)
