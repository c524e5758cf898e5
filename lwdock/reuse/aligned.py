"""Reuse across feature spaces: learnwares whose columns differ from the user's.

:func:`reuse_aligned` is what :func:`lwdock.reuse.api.reuse` calls for ``feature-align``, and for
``feature-augment`` / ``ensemble-pruning`` when a learnware's columns are not the user's (other
names, order or count). Each learnware gets a label-free column map
(:func:`lwdock.hetero.query.align`: columns matched by name, 1-D transforms, the missing ones
imputed from the learnware's own reduced set), its handle is wrapped in an
:class:`~lwdock.reuse.heterogeneous.ColumnMappedPredictor`, and the aligned reuser is fitted on the user's
columns. The ensemble's ``predict`` takes the user's columns; the maps are arrays in the ``.lwe``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, UsageError
from ..hetero import query as hetero
from ..hetero.names import name_embedder_available
from ..hetero.stats import fit_stats
from ..records import Entry
from .heterogeneous import ColumnMappedPredictor
from .base import CLASSIFICATION, task_from_semantic
from .execute import open_predictors

logger = logging.getLogger("lwdock")

# the user-facing method -> the aligned reuser behind it (lwdock.reuse.heterogeneous.ALIGNED_REUSERS)
ALIGNED_METHOD = {"feature-align": "feature-align", "feature-augment": "aligned-feature-augment",
                  "ensemble-pruning": "aligned-ensemble-pruning"}
TOP_ALIGNED = 5  # learnwares taken from a search result's heterogeneous hits (5 beat the mean for every user)


def aligned_selection(source: Any) -> list[str] | None:
    """The top heterogeneous hits of a search result (dict or its JSON file), or None when it has none."""
    if isinstance(source, (str, os.PathLike)) and str(source).endswith(".json") and Path(source).is_file():
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # read_selection names the problem
    if not isinstance(source, dict):
        return None
    hits = source.get("heterogeneous") or []
    ids = [str(h["id"] if isinstance(h, dict) else h) for h in hits[:TOP_ALIGNED]]
    return ids or None


def _names_of(entry: Entry) -> list[str] | None:
    names = entry.semantic.input_names
    dim = _width(entry)
    if dim and len(names) == dim and set(names) == set(range(dim)):
        return [names[i] for i in range(dim)]
    return None


def _width(entry: Entry) -> int | None:
    spec = entry.spec("table")
    return spec.dim if spec is not None and spec.dim is not None else entry.semantic.input_dim


def needs_alignment(entries: Sequence[Entry], method: str, columns: Sequence[str] | None, width: int | None) -> bool:
    """Whether ``method`` must align: always for feature-align; for feature-augment and
    ensemble-pruning when some learnware takes other columns than the user's."""
    if method == "feature-align":
        return True
    if method not in ALIGNED_METHOD or any(e.input_kind != "table" for e in entries):
        return False
    other_width = width is not None and any(_width(e) != width for e in entries)
    other_names = bool(columns) and any((n := _names_of(e)) is not None and n != list(columns) for e in entries)
    if other_names and not other_width and not name_embedder_available():
        logger.warning("your column names differ from the learnwares'; they are used by position "
                       "(aligning by name needs the text extra: pip install 'lwdock[text]')")
        return False
    return other_width or other_names


def _task(entries: Sequence[Entry]) -> tuple[str, int]:
    tasks = {task_from_semantic(e.semantic) for e in entries}
    if len(tasks) != 1:
        raise UsageError("the learnwares solve different tasks: " + ", ".join(f"{t} with {d} outputs" for t, d in sorted(tasks)),
                         hint="reuse learnwares with the same task and output dimension")
    if any(e.input_kind != "table" for e in entries):
        raise UsageError("heterogeneous reuse aligns table columns; these learnwares do not all take tables")
    return tasks.pop()


def _user_rows(labeled: tuple[Any, Any] | None, data: Any) -> np.ndarray:
    parts = [np.asarray(x, dtype=np.float64) for x in ((labeled[0] if labeled else None), data) if x is not None]
    if not parts:
        raise UsageError("heterogeneous reuse needs your rows to align the columns", hint="pass --data FILE or --labeled FILE")
    if len({p.shape[1:] for p in parts}) != 1:
        raise InputDataError(f"labelled data has shape {parts[0].shape[1:]} per row but data has {parts[1].shape[1:]}")
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def reuse_aligned(dock: Any, entries: Sequence[Entry], method: str, labeled: tuple[Any, Any] | None, *, data: Any,
                  columns: Sequence[str] | None, trusted: bool, random_state: int, cv: int, build: Any,
                  **params: Any) -> Any:
    """An ensemble of column-aligned learnwares (``build`` is :func:`lwdock.reuse.api.build_ensemble`)."""
    task, out_dim = _task(entries)
    X = _user_rows(labeled, data)
    if not columns or len(columns) != X.shape[1]:
        raise UsageError("heterogeneous reuse needs the names of your columns",
                         hint="give your rows as a CSV file whose first line names the columns")
    user = fit_stats(X, list(columns), seed=random_state)
    ids = [e.id for e in entries]
    members = hetero.align(dock, user, ids, entries)
    lws = [{"id": e.id, "alias": e.alias, "name": e.semantic.name or None, "shared_columns": m.shared,
            "imputed_columns": m.imputed} for e, m in zip(entries, members)]
    stack = contextlib.ExitStack()
    try:
        handles = stack.enter_context(open_predictors(dock, ids, trusted=trusted))
        wrapped = [ColumnMappedPredictor(h, m.map, {"id": m.id, "names": m.names, "shared": m.shared, "imputed": m.imputed})
                   for h, m in zip(handles, members)]
        ens = build(wrapped, ALIGNED_METHOD[method], task, out_dim if task == CLASSIFICATION else None,
                    labeled=labeled, data=data, random_state=random_state, cv=cv, n_features=user.d,
                    learnwares=lws, columns=list(columns), input_kind="table", **params)
    except BaseException:
        stack.close()
        raise
    ens._stack = stack
    return ens
