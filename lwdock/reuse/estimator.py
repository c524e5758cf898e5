"""The scikit-learn estimator base shared by the reusers.

Hyperparameters are stored as given in ``__init__``; ``fit`` validates them,
sets attributes ending in ``_`` and returns ``self``; inputs are never
mutated. ``learnwares`` is a list of :class:`~lwdock.reuse.base.Predictor`
handles (in-process for trusted models, sandboxed workers otherwise).

For the ``.lwe`` artifact every reuser exposes its fitted state as plain JSON
plus named numpy arrays (``_get_state`` / ``_set_state``); nothing is pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import UsageError
from .base import CLASSIFICATION, r2_or_accuracy, check_input, check_task, check_y, combine, input_kind_of, normalise_output
from .execute import run_learnwares


class ReuserBase(BaseEstimator):
    """Common checks and learnware execution. Subclasses set ``method``."""

    method = "base"
    needs_labels = False

    # -- helpers for subclasses ------------------------------------------
    def _check_params(self) -> None:
        # a refit starts clean: drop every fitted attribute of an earlier fit
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)
        self.task_ = check_task(self.task)
        lws = list(self.learnwares or [])
        if self.method != "baseline" and not lws:
            raise UsageError(f"{self.method}: no learnwares given")
        self.n_learnwares_ = len(lws)
        if self.n_classes is not None and self.task_ == CLASSIFICATION and int(self.n_classes) < 2:
            raise UsageError(f"n_classes must be at least 2, got {self.n_classes}")

    def _check_X(self, X: Any, fitting: bool) -> np.ndarray:
        """Table rows, images (N x C x H x W) or texts; the kind and shape are fixed by the first fit."""
        kind = None if fitting else getattr(self, "input_kind_", "table")
        shape = None if fitting else getattr(self, "input_shape_", None)
        expected = None if fitting else getattr(self, "n_features_in_", None)
        if kind == "image" and shape is not None:
            expected = None
        Xa = check_input(X, kind, tuple(shape) if shape is not None else None, expected)
        if fitting:
            self._set_input(Xa)
        return Xa

    def _set_input(self, Xa: np.ndarray) -> None:
        self.input_kind_ = input_kind_of(Xa)
        if self.input_kind_ != "table" and self.method in ("feature-augment", "ensemble-pruning", "baseline"):
            raise UsageError(f"{self.method} works on table inputs only, not {self.input_kind_}",
                             hint="use the average reuser (or the job selector for text)")
        self.input_shape_ = tuple(int(s) for s in Xa.shape[1:])
        self.n_features_in_ = int(np.prod(Xa.shape[1:])) if self.input_kind_ != "text" else 1

    def _run(self, X: np.ndarray, rows: np.ndarray | None = None, which: list[int] | None = None):
        """Outputs of the learnwares ``which`` (all by default) on ``X``; records their kinds on first use."""
        kinds = getattr(self, "output_kinds_", None)
        idx = list(range(len(self.learnwares))) if which is None else which
        raws = run_learnwares([self.learnwares[i] for i in idx], X)
        outs, new_kinds = [], list(kinds) if kinds is not None else [None] * len(self.learnwares)
        for i, raw in zip(idx, raws):
            name = getattr(self.learnwares[i], "id", None) or f"learnware {i}"
            out, kind = normalise_output(raw, X.shape[0], self.task_, self._n_classes(), new_kinds[i], str(name)[:12])
            new_kinds[i] = kind
            outs.append(out)
        self.output_kinds_ = new_kinds
        return outs, [new_kinds[i] for i in idx]

    def _n_classes(self) -> int | None:
        if self.task_ != CLASSIFICATION:
            return None
        return int(self.n_classes) if self.n_classes is not None else getattr(self, "n_classes_", None)

    def _set_classes(self, outs: list[np.ndarray], kinds: list[str], y: np.ndarray | None = None) -> None:
        if self.task_ != CLASSIFICATION:
            return
        if self.n_classes is not None:
            c = int(self.n_classes)
        else:
            widths = [o.shape[1] for o, k in zip(outs, kinds) if k != "label"]
            tops = [int(o.max()) + 1 for o, k in zip(outs, kinds) if k == "label"]
            if y is not None:
                tops.append(int(np.max(y)) + 1)
            c = max(widths + tops + [2])
        self.n_classes_ = c
        self.classes_ = np.arange(c)

    def _combine(self, outs: list[np.ndarray], kinds: list[str], weights: np.ndarray):
        return combine(outs, kinds, weights, self.task_, self._n_classes())

    # -- prediction: subclasses implement _predict_both(X) -> (pred, proba) ----
    def predict(self, X: Any) -> np.ndarray:
        return self._predict_both(X)[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (classification only); see each reuser for how they are formed."""
        if self.task_ != CLASSIFICATION:
            raise UsageError("predict_proba is only meaningful for classification")
        return self._predict_both(X)[1]

    def score(self, X: Any, y: Any) -> float:
        """scikit-learn's score: mean accuracy for a classifier, R^2 for a regressor."""
        return r2_or_accuracy(np.asarray(y), self.predict(X), self.task_)

    def _predict_both(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    @staticmethod
    def _finish(pred: np.ndarray, task: str) -> np.ndarray:
        if task == CLASSIFICATION:
            return np.asarray(pred, dtype=np.int64)
        return pred[:, 0] if pred.ndim == 2 and pred.shape[1] == 1 else pred

    def _fit_precomputed(self, Xa: np.ndarray, outs: list[np.ndarray], kinds: list[str], y: Any = None):
        """Fit from learnware outputs computed beforehand (evaluation folds, one run for several uses)."""
        self._check_params()
        self._set_input(Xa)
        self.output_kinds_ = list(kinds)
        ya = check_y(y, Xa.shape[0], self.task_, self.n_classes) if self.needs_labels else None
        self._set_classes(outs, kinds, ya)
        return self._fit_outputs(Xa, outs, kinds, ya)

    def _fit_outputs(self, Xa, outs, kinds, y):  # data-dependent reusers override this
        raise NotImplementedError

    # -- artifact state ----------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted state as ``(json_dict, arrays)``. Subclasses extend both."""
        meta: dict[str, Any] = {
            "task": self.task_,
            "n_features_in": int(self.n_features_in_),
            "input_kind": getattr(self, "input_kind_", "table"),
            "input_shape": list(getattr(self, "input_shape_", None) or [int(self.n_features_in_)]),
            "output_kinds": list(getattr(self, "output_kinds_", None) or []),
        }
        if self.task_ == CLASSIFICATION:
            meta["n_classes"] = int(self.n_classes_)
        return meta, {}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.task_ = meta["task"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.input_kind_ = meta.get("input_kind", "table")  # artifacts before image/text support: tables
        self.input_shape_ = tuple(int(s) for s in meta.get("input_shape") or [self.n_features_in_])
        self.n_learnwares_ = len(self.learnwares or [])
        kinds = meta.get("output_kinds") or []
        self.output_kinds_ = kinds if kinds else None
        if self.task_ == CLASSIFICATION:
            self.n_classes_ = int(meta["n_classes"])
            self.classes_ = np.arange(self.n_classes_)

    def _more_tags(self) -> dict[str, Any]:  # pragma: no cover - old sklearn tag API
        return {"requires_y": self.needs_labels}
