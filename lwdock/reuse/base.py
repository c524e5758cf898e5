"""Shared pieces of every reuser: the Predictor protocol, input checks, output kinds.

A *learnware output* is normalised once, here, into one of four kinds:

- ``"label"``  classification, one integer label per row in ``[0, n_classes)``;
- ``"proba"``  classification, ``n_classes`` non-negative columns summing to 1;
- ``"score"``  classification, ``n_classes`` columns that are not probabilities (logits);
- ``"value"``  regression, ``(n, k)`` real outputs (a 1-D output becomes ``(n, 1)``).

Reusers only ever see normalised outputs, so a probability is never pushed
through softmax a second time and multi-output regression keeps its columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import InputDataError, ModelRuntimeError, UsageError
from ..records import Semantic
from ..spec.rkme_text import as_texts

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
KINDS = ("label", "proba", "score", "value")


@runtime_checkable
class Predictor(Protocol):
    """Anything with ``predict(X) -> ndarray``. ``output_kind`` is optional (see module doc)."""

    def predict(self, X: np.ndarray) -> Any: ...


class InProcessPredictor:
    """Runs a *trusted* model object in this process (tests, ``--trusted``).

    Copying returns the same object, so scikit-learn's ``clone`` keeps the
    handle instead of deep-copying a model (or a worker) it does not own.
    """

    concurrent = False

    def __init__(self, model: Any, id: str | None = None, output_kind: str | None = None) -> None:
        if not callable(getattr(model, "predict", None)):
            raise UsageError(f"{type(model).__name__} has no predict method")
        self.model = model
        self.id = id
        self.output_kind = output_kind

    def predict(self, X: np.ndarray) -> Any:
        return self.model.predict(X)

    def __deepcopy__(self, memo: dict) -> InProcessPredictor:
        return self

    def __repr__(self) -> str:
        return f"InProcessPredictor({self.id or type(self.model).__name__})"


def check_task(task: str) -> str:
    t = str(task).strip().lower()
    if t not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    return t


def task_from_semantic(semantic: Semantic) -> tuple[str, int]:
    """(task, output dimension) from a learnware's semantic specification."""
    task = semantic.task
    name = task.strip().lower() if task else ""
    if name not in TASKS:
        raise UsageError(
            f"learnware task {task or 'missing'!r} cannot be reused",
            hint="lwdock reuse handles Classification and Regression learnwares",
        )
    if semantic.output_dim is None:
        raise UsageError("learnware semantic spec has no Output.Dimension")
    return name, semantic.output_dim


def check_X(X: Any, n_features: int | None = None, what: str = "X") -> np.ndarray:
    """A finite, non-empty 2-D float64 copy-free view of ``X``, or a clear InputDataError."""
    if X is None:
        raise InputDataError(f"{what} is missing")
    arr = np.asarray(X)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputDataError(
            f"{what} has dtype {arr.dtype}; numeric data is required",
            hint="encode categorical columns as numbers before reuse",
        )
    if arr.ndim == 1:
        raise InputDataError(f"{what} is 1-D; pass a 2-D table (rows x features)")
    if arr.ndim != 2:
        raise InputDataError(f"{what} has {arr.ndim} dimensions; a 2-D table is required")
    if arr.shape[0] == 0:
        raise InputDataError(f"{what} has no rows")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputDataError(
            f"{what} has {arr.shape[1]} features; the learnwares expect {n_features}",
            hint="the columns must match the learnwares' input, in order, without the label",
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        # rows count from 1 like the line numbers of file errors (an array has no header line)
        raise InputDataError(f"{what} contains NaN or infinite values (first in data row {bad + 1}, counting from 1)",
                             hint="impute them first")
    return arr


INPUT_KINDS = ("table", "image", "text")


def input_kind_of(X: Any) -> str:
    """``"text"`` for strings (a list of str or a string array), ``"image"`` for a 4-D numeric
    array (N x C x H x W), ``"table"`` for anything else (checked by :func:`check_X`)."""
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, str) for x in X):
        return "text"
    arr = X if isinstance(X, np.ndarray) else None
    if arr is None and not isinstance(X, (list, tuple)):
        arr = np.asarray(X) if X is not None else None
    if arr is not None:
        if arr.dtype.kind in "US" or (arr.dtype == object and arr.size and all(isinstance(x, str) for x in arr.ravel())):
            return "text"
        if arr.ndim == 4:
            return "image"
    return "table"


def check_input(X: Any, kind: str | None = None, shape: tuple[int, ...] | None = None, n_features: int | None = None,
                what: str = "X") -> np.ndarray:
    """Check user input of any kind; ``kind`` None means "detect it".

    - table: :func:`check_X` (a 2-D float64 table, ``n_features`` wide);
    - image: a finite numeric N x C x H x W array (``shape`` = (C, H, W) when known; else
      ``n_features`` = C*H*W when known), dtype kept (uint8 images stay small on the wire);
    - text: a 1-D array of str (what the sandboxed worker hands the model as a list of str).
    """
    got = input_kind_of(X)
    kind = kind or got
    if kind == "table":
        return check_X(X, n_features, what=what)
    if kind == "text":
        if got != "text":
            raise InputDataError(f"{what} must be a list of strings: the learnwares take text",
                                 hint="one text per line in a .txt file, or a .jsonl field / .csv column")

        return np.asarray(as_texts(X), dtype=str)
    if kind != "image":
        raise UsageError(f"unknown input kind {kind!r}")
    if got != "image":
        raise InputDataError(f"{what} must be an N x C x H x W image array: the learnwares take images",
                             hint="save the images as a 4-D .npy array")
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{what} has dtype {arr.dtype}; images must be numeric")
    if arr.shape[0] == 0:
        raise InputDataError(f"{what} has no images")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise InputDataError(f"{what} holds images of shape {tuple(arr.shape[1:])}; the learnwares expect {tuple(shape)}")
    if shape is None and n_features is not None and int(np.prod(arr.shape[1:])) != int(n_features):
        raise InputDataError(f"{what} holds images of {int(np.prod(arr.shape[1:]))} values (shape {tuple(arr.shape[1:])}); "
                             f"the learnwares expect {n_features} (C x H x W)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputDataError(f"{what} contains NaN or infinite pixel values")
    return arr


def check_y(y: Any, n_rows: int, task: str, n_classes: int | None) -> np.ndarray:
    """Labels that match the task: integer classes in range, or finite targets."""
    if y is None:
        raise InputDataError("labels are missing; this method needs labelled data")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape[0] != n_rows:
        raise InputDataError(f"{arr.shape[0]} labels for {n_rows} rows")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputDataError(f"labels have dtype {arr.dtype}; numeric labels are required")
    if task == REGRESSION:
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise InputDataError("regression targets contain NaN or infinite values")
        return arr
    if arr.ndim != 1:
        raise InputDataError(f"classification labels must be one column, got shape {arr.shape}")
    f = arr.astype(np.float64)
    if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
        raise InputDataError(
            "classification labels are not integers",
            hint="the learnwares predict class indices 0..C-1; is this a regression target?",
        )
    labels = f.astype(np.int64)
    if n_classes is not None and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputDataError(
            f"labels range over [{labels.min()}, {labels.max()}] but the learnwares predict classes 0..{n_classes - 1}",
            hint="map your classes to the learnwares' class indices",
        )
    return labels


def normalise_output(
    raw: Any, n_rows: int, task: str, n_classes: int | None, kind: str | None = None, name: str = "learnware"
) -> tuple[np.ndarray, str]:
    """Validate one learnware's output and return ``(array, kind)``."""
    if hasattr(raw, "detach"):  # a torch tensor from a trusted model
        raw = raw.detach().cpu().numpy()
    out = np.asarray(raw)
    if out.dtype == object or out.dtype.kind not in "biuf":
        raise ModelRuntimeError(f"{name} returned dtype {out.dtype}, not numbers")
    if out.ndim == 0 or out.shape[0] != n_rows:
        raise ModelRuntimeError(f"{name} returned {out.shape[0] if out.ndim else 0} rows for {n_rows} inputs")
    if out.ndim > 2:
        raise ModelRuntimeError(f"{name} returned shape {out.shape}; a table output is required")
    out = out.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ModelRuntimeError(f"{name} returned NaN or infinite values")
    if task == REGRESSION:
        if kind not in (None, "value"):
            raise ModelRuntimeError(f"{name}: output kind {kind!r} does not fit a regression task")
        return (out[:, None] if out.ndim == 1 else out), "value"
    if out.ndim == 1 or out.shape[1] == 1:
        if kind not in (None, "label"):
            raise ModelRuntimeError(f"{name} returned one column but was recorded as {kind!r}")
        flat = out.reshape(-1)
        if np.any(flat != np.round(flat)) or flat.min() < 0 or (n_classes is not None and flat.max() >= n_classes):
            raise ModelRuntimeError(f"{name} returned labels outside 0..{(n_classes or 0) - 1}")
        return flat.astype(np.int64), "label"
    if n_classes is not None and out.shape[1] != n_classes:
        raise ModelRuntimeError(f"{name} returned {out.shape[1]} columns for {n_classes} classes")
    is_proba = bool(np.all(out >= -1e-9) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))
    if kind is None:
        kind = "proba" if is_proba else "score"
    elif kind == "proba" and not is_proba:
        raise ModelRuntimeError(f"{name} was recorded as returning probabilities, but these rows do not sum to 1")
    elif kind not in ("proba", "score"):
        raise ModelRuntimeError(f"{name} returned {out.shape[1]} columns but was recorded as {kind!r}")
    return out, kind


def labels_of(out: np.ndarray, kind: str) -> np.ndarray:
    return out if kind == "label" else np.argmax(out, axis=1)


def check_weights(weights: Any, m: int) -> np.ndarray:
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != m:
        raise UsageError(f"{w.shape[0]} weights for {m} learnwares")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise UsageError("weights must be non-negative with a positive sum")
    return w / w.sum()


def combine(outs: Sequence[np.ndarray], kinds: Sequence[str], weights: np.ndarray, task: str, n_classes: int | None):
    """Weighted combination: ``(prediction, proba_or_None, mode)``.

    Classification averages probabilities when every learnware returns them,
    otherwise each learnware casts a weighted vote for its label (ties go to
    the smallest label). Regression is a weighted mean per output column.
    """
    if task == REGRESSION:
        acc = sum(w * o for w, o in zip(weights, outs) if w > 0)
        return acc, None, "mean"
    n = outs[0].shape[0]
    c = n_classes or 1 + max(int(labels_of(o, k).max()) for o, k in zip(outs, kinds))
    if all(k == "proba" for k in kinds):
        proba = sum(w * o for w, o in zip(weights, outs) if w > 0)
        return np.argmax(proba, axis=1), proba, "proba"
    votes = np.zeros((n, c))
    rows = np.arange(n)
    for w, o, k in zip(weights, outs, kinds):
        if w > 0:
            np.add.at(votes, (rows, labels_of(o, k)), w)
    return np.argmax(votes, axis=1), votes / votes.sum(axis=1, keepdims=True), "vote"


def score(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> float:
    """Accuracy for classification, RMSE for regression (the reported metric)."""
    if task == CLASSIFICATION:
        return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    diff = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1) - np.asarray(y_true, dtype=np.float64).reshape(
        len(y_true), -1
    )
    return float(np.sqrt(np.mean(diff**2)))


def r2_or_accuracy(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> float:
    """What scikit-learn's ``score`` returns: mean accuracy (classification) or R^2 (regression)."""
    if task == CLASSIFICATION:
        return score(y_true, y_pred, task)
    yt = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    total = float(((yt - yt.mean(axis=0)) ** 2).sum())
    residual = float(((yt - yp) ** 2).sum())
    return 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)


def metric_name(task: str) -> str:
    return "accuracy" if task == CLASSIFICATION else "rmse"
