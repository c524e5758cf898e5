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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from ..errors import InputDataError, LearnwareChangedError, NotFoundError, UsageError, no_file
from ..format.ids import sha256_file
from ..format.labels import encode, merge_classes
from ..records import Entry
from ..spec.data import Table
from ..spec.specfile import load_spec
from . import aligned, artifact
from .align import LearnwareIO, align_handles, ensemble_columns, permute_spec
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
from .data import labels_for, rows_for
from .execute import DEFAULT_CHUNK, open_predictors, run_learnwares, stream

__all__ = ["DATA_DEPENDENT", "METHODS", "Ensemble", "LearnwareChangedError", "build_ensemble", "evaluate",
           "load_ensemble", "make_reuser", "read_selection", "reuse", "selection_input_kind", "verify_learnwares"]

logger = logging.getLogger("lwdock")

METHODS = ("average", "job-selector", "ensemble-pruning", "feature-augment", "feature-align")
# the reusers behind feature-align and aligned augment/pruning (lwdock.reuse.aligned picks them)
ALIGNED = ("feature-align", "aligned-feature-augment", "aligned-ensemble-pruning")
DATA_DEPENDENT = ("ensemble-pruning", "feature-augment", "aligned-feature-augment", "aligned-ensemble-pruning")


class Ensemble:
    """A fitted reuser with its learnware handles, input schema, class labels and evaluation report.

    ``classes`` are the labels of a classifier's positions (``predict`` returns labels, and
    ``classes_`` holds them as numbers when every label is one); ``ios`` say which columns and
    labels each learnware has (saved, so a loaded ensemble aligns them the same way).
    """

    def __init__(self, reuser: Any, learnwares: list[dict[str, Any]], input_schema: dict[str, Any], report: dict[str, Any] | None = None, stack: contextlib.ExitStack | None = None, classes: list[str] | None = None, ios: list[LearnwareIO] | None = None) -> None:
        self.reuser = reuser
        self.learnwares = learnwares
        self.input_schema = input_schema
        self.report = report or {}
        self._stack = stack
        self.classes = classes
        self.ios = ios
        self._noted = False

    @property
    def method(self) -> str:
        return self.reuser.method

    @property
    def ids(self) -> list[str]:
        return [lw["id"] for lw in self.learnwares]

    @property
    def classes_(self) -> np.ndarray:
        """The labels a classifier predicts, in the order of its probability columns."""
        if self.reuser.task_ != CLASSIFICATION:
            raise AttributeError("a regression ensemble has no classes_")
        return labels_for(np.arange(int(self.reuser.n_classes_)), self.classes)

    @property
    def task(self) -> dict[str, Any]:
        r = self.reuser
        t = {"kind": r.task_}
        if r.task_ == CLASSIFICATION:
            t["n_classes"] = int(r.n_classes_)
            if self.classes is not None:
                t["classes"] = list(self.classes)
        return t

    def _check(self, X: Any) -> np.ndarray:
        s = self.input_schema
        kind = s.get("kind", "table")
        if kind == "table":
            X, note = rows_for(X, s.get("columns"), "the data")
            if note and not self._noted:
                logger.info(note)
                self._noted = True
        shape = tuple(s["shape"]) if kind == "image" and s.get("shape") else None
        return check_input(X, kind, shape, int(s["n_features"]) if kind != "text" else None, what="data")

    def _labels(self, positions: np.ndarray) -> np.ndarray:
        return labels_for(positions, self.classes) if self.reuser.task_ == CLASSIFICATION else positions

    def predict(self, X: Any, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
        """Predictions for ``X`` (labels for a classifier), streamed in chunks of ``chunk_size`` rows.

        A table with column names (a :class:`~lwdock.spec.data.Table` or a DataFrame) is matched to
        the ensemble's columns by name."""
        Xa = self._check(X)
        return self._labels(stream(lambda part: self.reuser._predict_both(part)[0], Xa, chunk_size,
                                   f"{self.method}: predict"))

    def predict_proba(self, X: Any, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
        """Class probabilities, one column per label of ``classes_``."""
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
        return self._labels(out[:, 0].astype(np.int64)), out[:, 1:]

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
        ios = self.ios or [None] * len(self.learnwares)
        lws = [{**lw, "output_kind": kinds[i] if i < len(kinds) else None, **(ios[i].to_dict() if ios[i] else {})}
               for i, lw in enumerate(self.learnwares)]
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
        other_columns = aligned.aligned_selection(source)  # only learnwares with other columns than the user's
        if other_columns:
            return other_columns, None
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


@dataclass
class _Selection:
    """What the chosen learnwares say about the ensemble: task, input kind and width, columns, labels."""

    learnwares: list[dict[str, Any]]
    task: str
    out_dim: int
    in_dim: int | None
    kind: str
    ios: list[LearnwareIO]

    @property
    def columns(self) -> list[str] | None:
        return ensemble_columns(self.ios) if self.kind == "table" else None

    @property
    def classes(self) -> list[str] | None:
        return merge_classes([io.classes or [] for io in self.ios]) if self.task == CLASSIFICATION else None


def _describe_learnwares(dock: Any, refs: list[str]) -> _Selection:
    entries: dict[str, Entry] = {}
    for ref in refs:
        entry = dock.get(ref)
        entries.setdefault(entry.id, entry)
    lws, tasks, dims, kinds, ios = [], set(), set(), set(), []
    for entry in entries.values():
        kinds.add(entry.input_kind)
        task, out_dim = task_from_semantic(entry.semantic)
        tasks.add((task, out_dim if task != CLASSIFICATION else 0))  # classifiers are aligned by label, not width
        dims.update(s.dim for s in entry.specs if s.kind == "table" and s.dim is not None)
        if entry.semantic.input_dim is not None:
            dims.add(entry.semantic.input_dim)
        lws.append({"id": entry.id, "alias": entry.alias, "name": entry.semantic.name or None})
        ios.append(LearnwareIO.of(entry.semantic))
    if len(tasks) != 1:
        raise UsageError(
            "the learnwares solve different tasks: " + ", ".join(
                f"{t} with {d} outputs" if d else t for t, d in sorted(tasks)),
            hint="reuse learnwares with the same task (and, for regression, the same outputs)",
        )
    if len(kinds) != 1:
        raise UsageError(f"the learnwares take different kinds of input ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    (task, out_dim), = tasks
    if task == CLASSIFICATION:
        out_dim = max(len(io.classes or []) for io in ios)
    if kind == "text":  # texts have no width
        return _Selection(lws, task, out_dim, None, kind, ios)
    if len(dims) != 1:
        raise UsageError(f"the learnwares take inputs of different widths ({sorted(dims)})" if dims else "the learnwares declare no input dimension")
    return _Selection(lws, task, out_dim, dims.pop(), kind, ios)


# -- building ----------------------------------------------------------------


def reuse(
    dock: Any,
    ids_or_search: Any,
    method: str = "average",
    labeled: Any = None,
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
    its JSON file. ``labeled`` is ``(X, y)`` or a :class:`~lwdock.spec.data.Table` with its
    labels (needed by ensemble-pruning and feature-augment); labels may be strings, matched to
    the learnwares' classes by value. ``data`` is unlabelled user rows (the job selector
    derives mixture weights from it when none are given). A table with column names (a Table
    or a DataFrame) is matched to the learnwares' columns by name; ``columns`` names the
    columns of plain arrays. ``trusted=True`` runs the models in this process instead of the
    sandboxed runner. The returned ensemble holds the model handles: close it (or use ``with``).
    """
    if method in aligned.ALIGNED_METHOD:  # learnwares with other columns than the user's are aligned first
        aligned_ens = _reuse_aligned(dock, ids_or_search, method, labeled, data, columns, trusted=trusted,
                                     random_state=random_state, cv=cv, **params)
        if aligned_ens is not None:
            return aligned_ens
    refs, search_weights = read_selection(ids_or_search)
    sel = _describe_learnwares(dock, refs)
    lws = sel.learnwares
    if weights is None and search_weights is not None and len(search_weights) == len(lws):
        weights = search_weights
    Xl, yl = _split_labeled(labeled)
    cols, Xl, data = _user_rows(sel, Xl, data, columns)
    classes = sel.classes
    specs = None
    if method == "job-selector":
        specs = [permute_spec(load_spec(dock.spec_path(lw["id"], kind=sel.kind)), io, cols)
                 for lw, io in zip(lws, sel.ios)]
    stack = contextlib.ExitStack()
    try:
        raw = stack.enter_context(open_predictors(dock, [lw["id"] for lw in lws], trusted=trusted))
        handles = align_handles(raw, sel.ios, cols, classes)
        ens = build_ensemble(
            handles, method, sel.task, len(classes) if classes is not None else None,
            labeled=(Xl, yl) if Xl is not None else None, data=data, specs=specs, weights=weights,
            random_state=random_state, cv=cv, n_features=sel.in_dim, learnwares=lws, columns=cols,
            input_kind=sel.kind, classes=classes, ios=sel.ios, **params,
        )
    except BaseException:
        stack.close()
        raise
    ens._stack = stack
    return ens


def _reuse_aligned(dock: Any, ids_or_search: Any, method: str, labeled: Any, data: Any, columns: Any, *,
                   trusted: bool, random_state: int, cv: int, **params: Any) -> Ensemble | None:
    """The heterogeneous path (lwdock.reuse.aligned) when a learnware's columns differ from the
    user's, else None (the learnwares take the user's columns as they are)."""
    refs = (aligned.aligned_selection(ids_or_search) if method == "feature-align" else None) or read_selection(ids_or_search)[0]
    entries = list({e.id: e for e in (dock.get(r) for r in refs)}.values())
    if isinstance(labeled, Table):
        columns = columns or (list(labeled.columns) if labeled.columns else None)
        labeled = (labeled.X, labeled.y)
    if isinstance(data, Table):
        columns = columns or (list(data.columns) if data.columns else None)
        data = data.X
    width = next((np.shape(x)[1] for x in (labeled[0] if labeled else None, data)
                  if x is not None and np.ndim(x) == 2), None)
    if not aligned.needs_alignment(entries, method, columns, width):
        return None
    return aligned.reuse_aligned(dock, entries, method, labeled, data=data, columns=columns, trusted=trusted,
                                 random_state=random_state, cv=cv, build=build_ensemble, **params)


def _split_labeled(labeled: Any) -> tuple[Any, Any]:
    if labeled is None:
        return None, None
    if isinstance(labeled, Table):
        if labeled.y is None:
            raise UsageError("the labelled table has no label column")
        return labeled, labeled.y
    X, y = labeled
    return X, y


def _user_rows(sel: _Selection, Xl: Any, data: Any, columns: list[str] | None) -> tuple[list[str] | None, Any, Any]:
    """The ensemble's column order, and the user's rows in it.

    The learnwares' names decide; when they name none, the user's own (the labelled table's, else
    the data's, else ``columns``) become the ensemble's, so that ``predict`` checks them later.
    """
    if sel.kind != "table":
        return None, Xl, data
    cols = sel.columns
    notes = []
    Xl, note = rows_for(Xl, cols, "the labelled data")
    notes.append(note)
    data, note = rows_for(data, cols, "the data")
    notes.append(note)
    if cols is None:
        cols = next((list(t.columns) for t in (Xl, data) if isinstance(t, Table) and t.columns), None) or columns
    note = next((n for n in notes if n), None)
    if note:
        logger.info(note)
    return cols, Xl, data


def make_reuser(method: str, handles: list[Any], task: str, n_classes: int | None, *, specs: Any = None, weights: Any = None, random_state: int = 0, **params: Any) -> Any:
    """An unfitted reuser for ``method`` (``params`` are its hyperparameters)."""
    if method not in METHODS and method not in ALIGNED:
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
    classes: list[str] | None = None,
    ios: list[LearnwareIO] | None = None,
    **params: Any,
) -> Ensemble:
    """Fit ``method`` on Predictor ``handles`` (no dock needed: tests, benchmarks, trusted models).

    ``input_kind``: "table", "image" (N x C x H x W arrays) or "text" (lists of str); detected
    from the data when None. ``classes``: the labels of a classifier's positions ``0..n_classes-1``
    (the labelled rows may then hold those labels, strings included); None: the positions themselves.
    """
    task = check_task(task)
    if task == CLASSIFICATION and classes is not None:
        n_classes = len(classes)
    reuser = make_reuser(method, handles, task, n_classes, specs=specs, weights=weights, random_state=random_state, **params)
    Xl = yl = None
    if labeled is not None:
        Xl = check_input(labeled[0], input_kind, None, n_features, what="labelled data")
        y = encode(labeled[1], classes, "the labels") if task == CLASSIFICATION and classes is not None else labeled[1]
        yl = check_y(y, Xl.shape[0], task, n_classes)
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
    return Ensemble(reuser, lws, _input_schema(reuser, columns), report, classes=classes if task == CLASSIFICATION else None,
                    ios=ios)


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
    classes = (doc.get("task") or {}).get("classes")
    ios = [LearnwareIO(lw.get("columns"), lw.get("classes")) for lw in doc["learnwares"]]
    handles = align_handles(handles, ios, (doc["input_schema"] or {}).get("columns"), classes) if handles else handles
    try:
        reuser = artifact.rebuild(doc, arrays, handles)
    except BaseException:
        stack.close()
        raise
    lws = [{k: lw.get(k) for k in ("id", "alias", "name")} for lw in doc["learnwares"]]
    return Ensemble(reuser, lws, dict(doc["input_schema"]), doc.get("report") or {}, stack, classes=classes, ios=ios)
