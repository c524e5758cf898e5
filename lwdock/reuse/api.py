"""Reuse from Python: build an :class:`Ensemble`, predict, save and load ``.lwe`` artifacts.

>>> ens = reuse(dock, ["a1b2", "c3d4"], method="average", data=X_user)   # doctest: +SKIP
>>> ens.predict(X_new); ens.save("ensemble.lwe"); ens.close()             # doctest: +SKIP
>>> with load_ensemble("ensemble.lwe", dock) as ens: ens.predict(X)      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from ..errors import InputDataError, LearnwareChangedError, NotFoundError, UsageError, no_file
from ..format.ids import sha256_file
from ..records import Entry
from ..spec.specfile import load_spec
from . import artifact
from .base import (
    CLASSIFICATION,
    r2_or_accuracy,
    check_input,
    check_task,
    check_y,
    input_kind_of,
    labels_of,
    metric_name,
    normalise_output,
    score,
    task_from_semantic,
)
from .baseline import BaselineModel
from .execute import DEFAULT_CHUNK, open_predictors, run_learnwares, stream

__all__ = ["DATA_DEPENDENT", "METHODS", "Ensemble", "LearnwareChangedError", "build_ensemble", "evaluate",
           "load_ensemble", "make_reuser", "read_selection", "reuse", "selection_input_kind", "verify_learnwares"]

logger = logging.getLogger("lwdock")

METHODS = ("average", "job-selector", "ensemble-pruning", "feature-augment")
DATA_DEPENDENT = ("ensemble-pruning", "feature-augment")


class Ensemble:
    """A fitted reuser with its learnware handles, input schema and evaluation report."""

    def __init__(self, reuser: Any, learnwares: list[dict[str, Any]], input_schema: dict[str, Any], report: dict[str, Any] | None = None, stack: contextlib.ExitStack | None = None) -> None:
        self.reuser = reuser
        self.learnwares = learnwares
        self.input_schema = input_schema
        self.report = report or {}
        self._stack = stack

    @property
    def method(self) -> str:
        return self.reuser.method

    @property
    def ids(self) -> list[str]:
        return [lw["id"] for lw in self.learnwares]

    @property
    def task(self) -> dict[str, Any]:
        r = self.reuser
        t = {"kind": r.task_}
        if r.task_ == CLASSIFICATION:
            t["n_classes"] = int(r.n_classes_)
        return t

    def _check(self, X: Any) -> np.ndarray:
        s = self.input_schema
        kind = s.get("kind", "table")
        shape = tuple(s["shape"]) if kind == "image" and s.get("shape") else None
        return check_input(X, kind, shape, int(s["n_features"]) if kind != "text" else None, what="data")

    def predict(self, X: Any, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
        """Predictions for ``X``, streamed in chunks of ``chunk_size`` rows."""
        Xa = self._check(X)
        return stream(lambda part: self.reuser._predict_both(part)[0], Xa, chunk_size, f"{self.method}: predict")

    def predict_proba(self, X: Any, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
        if self.reuser.task_ != CLASSIFICATION:
            raise UsageError("probabilities are only available for classification")
        Xa = self._check(X)
        return stream(lambda part: self.reuser._predict_both(part)[1], Xa, chunk_size, f"{self.method}: predict")

    def predict_with_proba(self, X: Any, chunk_size: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one pass over the learnwares (classification)."""
        if self.reuser.task_ != CLASSIFICATION:
            raise UsageError("probabilities are only available for classification")
        Xa = self._check(X)

        def both(part: np.ndarray) -> np.ndarray:
            pred, proba = self.reuser._predict_both(part)
            return np.column_stack([pred, proba])

        out = stream(both, Xa, chunk_size, f"{self.method}: predict")
        return out[:, 0].astype(np.int64), out[:, 1:]

    @property
    def classes_(self) -> np.ndarray:
        """The class labels a classifier ensemble predicts (scikit-learn's attribute)."""
        if self.reuser.task_ != CLASSIFICATION:
            raise AttributeError("a regression ensemble has no classes_")
        return self.reuser.classes_

    @property
    def n_features_in_(self) -> int:
        return int(self.reuser.n_features_in_)

    def score(self, X: Any, y: Any, chunk_size: int = DEFAULT_CHUNK) -> float:
        """scikit-learn's score: mean accuracy for a classifier, R^2 for a regressor."""
        pred = self.predict(X, chunk_size=chunk_size)
        return r2_or_accuracy(np.asarray(y), pred, self.reuser.task_)

    def describe(self) -> dict[str, Any]:
        weights = getattr(self.reuser, "weights_", None)
        lws = []
        for i, lw in enumerate(self.learnwares):
            item = dict(lw)
            if weights is not None:
                item["weight"] = float(weights[i])
            lws.append(item)
        return {"method": self.method, "task": self.task, "learnwares": lws, "input_schema": self.input_schema, "report": self.report}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ``.lwe`` artifact (see docs/reuse.md)."""
        kinds = list(getattr(self.reuser, "output_kinds_", None) or [None] * len(self.learnwares))
        lws = [{**lw, "output_kind": kinds[i] if i < len(kinds) else None} for i, lw in enumerate(self.learnwares)]
        header = {"task": self.task, "input_schema": self.input_schema, "learnwares": lws, "report": self.report}
        return artifact.write(path, self.reuser, header)

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> Ensemble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- selection -----------------------------------------------------------------


def read_selection(source: Any) -> tuple[list[str], list[float] | None]:
    """Learnware refs and optional weights from ids, a search result (a ``SearchResult``, its dict
    or its JSON file).

    A search result's ``mixture`` (ids and weights) is used when it is not empty, else all its
    ``singles`` with uniform weights, as docs/search.md says (the reference takes the top single
    only). (``singles`` is the key ``lwdock search --json`` writes, schema ``lwdock.search/1``.)
    """
    if hasattr(source, "to_dict") and not isinstance(source, dict):
        source = source.to_dict()  # a lwdock.search SearchResult
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source.endswith(".json")):
        path = Path(source)
        if not path.is_file():
            raise no_file("search result", path)
        try:
            source = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise InputDataError(f"{path} is not a JSON search result",
                                 hint="write one with `lwdock search ... --json > found.json`") from None
        if not isinstance(source, dict):
            raise InputDataError(f"{path} is not a JSON search result (no 'singles' or 'mixture')")
    if isinstance(source, str):
        source = [s for s in source.split(",") if s.strip()]
    if isinstance(source, dict):
        mix = source.get("mixture") or {}
        ids = [str(i) for i in (mix.get("ids") or [])]
        if ids:
            w = mix.get("weights")
            return ids, [float(x) for x in w] if w is not None and len(w) == len(ids) else None
        singles = source.get("singles") or []
        if singles:
            return [str(s["id"] if isinstance(s, dict) else s) for s in singles], None
        if "ids" in source:
            return read_selection(list(source["ids"]))
        raise UsageError("the search result holds no learnwares", hint="search again, or pass --ids")
    if isinstance(source, (list, tuple)):
        ids = [str(s["id"] if isinstance(s, dict) else s).strip() for s in source]
        ids = [i for i in ids if i]
        if not ids:
            raise UsageError("no learnware ids given")
        return ids, None
    raise UsageError(f"cannot read learnware ids from a {type(source).__name__}",
                     hint="give ids, a search result or the JSON file `lwdock search --json` wrote")


def selection_input_kind(dock: Any, ids_or_search: Any) -> str:
    """The input kind ("table", "image", "text") of the learnwares a selection names."""
    refs, _ = read_selection(ids_or_search)
    kinds = {dock.get(r).input_kind for r in refs}
    if len(kinds) != 1:
        raise UsageError(f"the learnwares take different kinds of input ({', '.join(sorted(kinds))})")
    return kinds.pop()


def _describe_learnwares(dock: Any, refs: list[str]) -> tuple[list[dict[str, Any]], str, int, int | None, str]:
    entries: dict[str, Entry] = {}
    for ref in refs:
        entry = dock.get(ref)
        entries.setdefault(entry.id, entry)
    lws, tasks, dims, kinds = [], set(), set(), set()
    for entry in entries.values():
        kinds.add(entry.input_kind)
        tasks.add(task_from_semantic(entry.semantic))
        dims.update(s.dim for s in entry.specs if s.kind == "table" and s.dim is not None)
        if entry.semantic.input_dim is not None:
            dims.add(entry.semantic.input_dim)
        lws.append({"id": entry.id, "alias": entry.alias, "name": entry.semantic.name or None})
    if len(tasks) != 1:
        raise UsageError(
            "the learnwares solve different tasks: " + ", ".join(f"{t} with {d} outputs" for t, d in sorted(tasks)),
            hint="reuse learnwares with the same task and output dimension",
        )
    if len(kinds) != 1:
        raise UsageError(f"the learnwares take different kinds of input ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    if kind == "text":  # texts have no width
        (task, out_dim), = tasks
        return lws, task, out_dim, None, kind
    if len(dims) != 1:
        raise UsageError(f"the learnwares take inputs of different widths ({sorted(dims)})" if dims else "the learnwares declare no input dimension")
    (task, out_dim), = tasks
    return lws, task, out_dim, dims.pop(), kind


# -- building ----------------------------------------------------------------


def reuse(
    dock: Any,
    ids_or_search: Any,
    method: str = "average",
    labeled: tuple[Any, Any] | None = None,
    *,
    data: Any = None,
    weights: Any = None,
    trusted: bool = False,
    random_state: int = 0,
    cv: int = 5,
    columns: list[str] | None = None,
    **params: Any,
) -> Ensemble:
    """Build an ensemble of dock learnwares.

    ``ids_or_search``: refs (ids, prefixes, aliases), a search result dict, or
    its JSON file. ``labeled`` is ``(X, y)`` (needed by ensemble-pruning and
    feature-augment); ``data`` is unlabelled user rows (the job selector
    derives mixture weights from it when none are given). ``trusted=True``
    runs the models in this process instead of the sandboxed runner.
    The returned ensemble holds the model handles: close it (or use ``with``).
    """
    refs, search_weights = read_selection(ids_or_search)
    lws, task, out_dim, in_dim, kind = _describe_learnwares(dock, refs)
    if weights is None and search_weights is not None and len(search_weights) == len(lws):
        weights = search_weights
    specs = None
    if method == "job-selector":
        specs = [load_spec(dock.spec_path(lw["id"], kind=kind)) for lw in lws]
    stack = contextlib.ExitStack()
    try:
        handles = stack.enter_context(open_predictors(dock, [lw["id"] for lw in lws], trusted=trusted))
        ens = build_ensemble(
            handles, method, task, out_dim if task == CLASSIFICATION else None, labeled=labeled, data=data,
            specs=specs, weights=weights, random_state=random_state, cv=cv, n_features=in_dim,
            learnwares=lws, columns=columns, input_kind=kind, **params,
        )
    except BaseException:
        stack.close()
        raise
    ens._stack = stack
    return ens


def make_reuser(method: str, handles: list[Any], task: str, n_classes: int | None, *, specs: Any = None, weights: Any = None, random_state: int = 0, **params: Any) -> Any:
    """An unfitted reuser for ``method`` (``params`` are its hyperparameters)."""
    if method not in METHODS:
        raise UsageError(f"unknown reuse method {method!r}", hint=f"choose one of {', '.join(METHODS)}")
    cls = artifact.reuser_class(method)
    kw: dict[str, Any] = {"learnwares": handles, "task": task, "n_classes": n_classes, **params}
    if method == "average":
        kw["weights"] = weights
    elif method == "job-selector":
        kw.update(specs=specs, weights=weights, random_state=random_state)
    elif weights is not None:
        logger.info("%s learns its own weights; the given weights are not used", method)
    try:
        return cls(**kw)
    except TypeError as exc:
        raise UsageError(f"bad parameter for {method}: {exc}") from None


def build_ensemble(
    handles: list[Any],
    method: str,
    task: str,
    n_classes: int | None,
    *,
    labeled: tuple[Any, Any] | None = None,
    data: Any = None,
    specs: Any = None,
    weights: Any = None,
    random_state: int = 0,
    cv: int = 5,
    n_features: int | None = None,
    learnwares: list[dict[str, Any]] | None = None,
    columns: list[str] | None = None,
    input_kind: str | None = None,
    **params: Any,
) -> Ensemble:
    """Fit ``method`` on Predictor ``handles`` (no dock needed: tests, benchmarks, trusted models).

    ``input_kind``: "table", "image" (N x C x H x W arrays) or "text" (lists of str); detected
    from the data when None.
    """
    task = check_task(task)
    reuser = make_reuser(method, handles, task, n_classes, specs=specs, weights=weights, random_state=random_state, **params)
    Xl = yl = None
    if labeled is not None:
        Xl = check_input(labeled[0], input_kind, None, n_features, what="labelled data")
        yl = check_y(labeled[1], Xl.shape[0], task, n_classes)
        input_kind = input_kind or input_kind_of(Xl)
    elif method in DATA_DEPENDENT:
        raise UsageError(f"{method} needs labelled data", hint="pass --labeled FILE (features + a label column)")
    Xu = check_input(data, input_kind, None, n_features, what="data") if data is not None else None
    if Xl is not None and Xu is not None and Xl.shape[1:] != Xu.shape[1:]:
        raise InputDataError(f"labelled data has shape {Xl.shape[1:]} per row but data has {Xu.shape[1:]}")
    report = _fit(reuser, handles, Xl, yl, Xu, cv=cv, random_state=random_state)
    if not hasattr(reuser, "n_features_in_"):  # data-free and fitted without data: the dock knows the width
        if n_features is None and input_kind != "text":
            raise UsageError(f"{method} without data cannot tell the input width", hint="pass --data FILE")
        reuser.n_features_in_ = int(n_features) if n_features is not None else 1
        reuser.input_kind_ = input_kind or "table"
        reuser.input_shape_ = (int(n_features),) if input_kind in (None, "table") else None
    lws = learnwares or [{"id": getattr(h, "id", None) or f"learnware-{i}", "alias": None, "name": None} for i, h in enumerate(handles)]
    return Ensemble(reuser, lws, _input_schema(reuser, columns), report)


def _fit(reuser: Any, handles: list[Any], Xl: Any, yl: Any, Xu: Any, *, cv: int, random_state: int) -> dict[str, Any]:
    """Fit ``reuser``; with labelled rows, also evaluate it (the report), running the learnwares once."""
    if Xl is None:
        reuser.fit(Xu)
        return {}
    outs, kinds = _outputs(reuser, handles, Xl, reuser.task, reuser.n_classes)
    if reuser.method in DATA_DEPENDENT:
        reuser._fit_precomputed(Xl, outs, kinds, yl)
    else:
        reuser.fit(Xu if Xu is not None else Xl)
    return evaluate(reuser, Xl, yl, outs, kinds, cv=cv, random_state=random_state)


def _input_schema(reuser: Any, columns: list[str] | None) -> dict[str, Any]:
    """What the ensemble takes (saved in the artifact, checked on predict)."""
    width = int(reuser.n_features_in_)
    kind = getattr(reuser, "input_kind_", "table")
    if columns is not None and (len(columns) != width or kind != "table"):
        columns = None
    schema: dict[str, Any] = {"n_features": width, "dtype": "float64", "columns": columns}
    if kind != "table":  # table schemas stay as they were; image/text ones name their kind
        shape = getattr(reuser, "input_shape_", None)
        schema.update(kind=kind, dtype="str" if kind == "text" else "numeric",
                      shape=list(shape) if kind == "image" and shape else None)
    return schema


def _outputs(reuser: Any, handles: list[Any], X: np.ndarray, task: str, n_classes: int | None):
    raws = run_learnwares(handles, X)
    outs, kinds = [], []
    for i, raw in enumerate(raws):
        o, k = normalise_output(raw, X.shape[0], task, n_classes, None, str(getattr(handles[i], "id", None) or f"learnware {i}")[:12])
        outs.append(o)
        kinds.append(k)
    return outs, kinds


# -- evaluation ------------------------------------------------------------------


def _folds(y: np.ndarray, task: str, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(y)
    k = max(2, min(int(cv), n))
    counts = np.bincount(y)[np.bincount(y) > 0] if task == CLASSIFICATION else None
    if counts is not None and counts.min() >= k:
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


def evaluate(reuser: Any, X: np.ndarray, y: np.ndarray, outs: list, kinds: list, cv: int = 5, random_state: int = 0) -> dict[str, Any]:
    """Scores on the labelled rows: the reuser, the user-only baseline and each learnware alone.

    Data-dependent reusers and the baseline are scored by ``cv``-fold cross-validation
    (fitted on the other folds); data-free reusers and single learnwares on all rows.
    """
    task = reuser.task_
    n_classes = getattr(reuser, "n_classes_", None)
    singles = [score(y, labels_of(o, k) if task == CLASSIFICATION else o, task) for o, k in zip(outs, kinds)]
    folds = _folds(y, task, cv, random_state) if len(y) >= 4 else []

    def cross_val(make, use_outputs: bool) -> float | None:
        preds = np.zeros(len(y), dtype=np.int64) if task == CLASSIFICATION else np.zeros((len(y),) + y.shape[1:])
        done = np.zeros(len(y), dtype=bool)
        for tr, te in folds:
            est = make()
            try:
                if use_outputs:
                    est._fit_precomputed(X[tr], [o[tr] for o in outs], kinds, y[tr])
                    p, _ = est._predict_from_outputs(X[te], [o[te] for o in outs], kinds)
                else:
                    p = est.fit(X[tr], y[tr]).predict(X[te])
            except InputDataError:  # e.g. a training fold with one class only
                continue
            preds[te] = p.reshape(preds[te].shape)
            done[te] = True
        return score(y[done], preds[done], task) if done.any() else None

    if reuser.needs_labels:
        reuse_score, how = cross_val(lambda: clone(reuser), True), f"{len(folds)}-fold cross-validation"
    else:
        reuse_score, how = score(y, reuser._predict_from_outputs(X, outs, kinds)[0], task), "all labelled rows (data-free)"
    # the user-only baseline is a linear model on table features; images are flattened, texts have none
    kind = input_kind_of(X)
    Xb = X.reshape(X.shape[0], -1).astype(np.float64) if kind == "image" else X
    baseline = None
    if kind != "text":
        X, X_orig = Xb, X
        baseline = cross_val(lambda: BaselineModel(task=task, n_classes=n_classes), False)
        X = X_orig
    return {
        "metric": metric_name(task),
        "higher_is_better": task == CLASSIFICATION,
        "n_labeled": int(len(y)),
        "reuse": reuse_score,
        "reuse_scored_on": how,
        "baseline": baseline,
        "baseline_scored_on": f"{len(folds)}-fold cross-validation (user-only linear model)",
        "single": singles,
    }


# -- loading -------------------------------------------------------------------


def verify_learnwares(dock: Any, doc: dict[str, Any], source: str = "the ensemble") -> None:
    """Refuse when a learnware the artifact needs is missing or its zip changed."""
    for lw in doc["learnwares"]:
        lw_id = str(lw.get("id", ""))
        try:
            entry = dock.get(lw_id)
        except NotFoundError:
            raise NotFoundError(
                f"learnware {lw_id[:12]} needed by {source} is not in the dock",
                hint="submit it again (same zip, same id) or rebuild the ensemble",
            ) from None
        if entry.id != lw_id:
            raise NotFoundError(f"learnware {lw_id[:12]} needed by {source} is not in the dock")
        blob = dock.blob_path(lw_id)
        if not blob.is_file():
            raise LearnwareChangedError(f"learnware {lw_id[:12]} needed by {source} has no stored zip", hint="run `lwdock doctor`")
        actual = sha256_file(blob)
        if actual != lw_id:
            raise LearnwareChangedError(
                f"learnware {lw_id[:12]} has changed since {source} was built (its zip now hashes to {actual[:12]})",
                hint="the dock copy was modified; restore it or rebuild the ensemble",
            )


def load_ensemble(path: str | os.PathLike[str], dock: Any = None, *, trusted: bool = False, predictors: dict[str, Any] | None = None) -> Ensemble:
    """Load a ``.lwe`` artifact and open its learnwares from ``dock``.

    ``predictors`` (id -> Predictor) replaces the dock for trusted in-process use.
    """
    doc, arrays = artifact.read(path)
    ids = [str(lw["id"]) for lw in doc["learnwares"]]
    stack = contextlib.ExitStack()
    if predictors is not None:
        missing = [i for i in ids if i not in predictors]
        if missing:
            raise NotFoundError(f"no predictor for learnware {missing[0][:12]} needed by {path}")
        handles = [predictors[i] for i in ids]
    else:
        if dock is None:
            raise UsageError("loading an ensemble needs the dock that holds its learnwares")
        verify_learnwares(dock, doc, str(path))
        handles = stack.enter_context(open_predictors(dock, ids, trusted=trusted)) if doc["method"] != "baseline" else []
    try:
        reuser = artifact.rebuild(doc, arrays, handles)
    except BaseException:
        stack.close()
        raise
    lws = [{k: lw.get(k) for k in ("id", "alias", "name")} for lw in doc["learnwares"]]
    return Ensemble(reuser, lws, dict(doc["input_schema"]), doc.get("report") or {}, stack)
