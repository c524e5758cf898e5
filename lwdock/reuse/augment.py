"""Feature augmentation: learnware outputs become extra features for a linear model.

Features are ``[X, h_1(X), ..., h_m(X)]``: probabilities or scores as they
are, label outputs one-hot encoded (a class index is not a magnitude),
regression outputs as columns. Every column is standardised with the
training mean and spread. The head is

- classification: multinomial ``LogisticRegression(C)`` (lbfgs);
- regression: ``RidgeCV(alphas)`` (efficient leave-one-out choice of alpha).

The fitted head is kept as plain arrays (coefficients, intercepts, classes)
and predictions are computed from those arrays, so the ``.lwe`` artifact
restores it exactly without pickling an estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeCV

from ..errors import InputDataError, UsageError
from .base import CLASSIFICATION, check_y
from .estimator import ReuserBase

DEFAULT_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_linear(Z: np.ndarray, y: np.ndarray, task: str, C: float, alphas: Any) -> dict[str, np.ndarray]:
    """Fit the linear head on standardised features; return its arrays."""
    if task == CLASSIFICATION:
        classes = np.unique(y)
        if classes.size < 2:
            raise InputDataError("the labels hold a single class; a classifier needs at least two")

        lr = LogisticRegression(C=float(C), max_iter=5000).fit(Z, y)
        return {"coef": lr.coef_, "intercept": lr.intercept_, "classes": lr.classes_.astype(np.int64)}

    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.size == 0 or np.any(alphas <= 0):
        raise UsageError("alphas must be positive")
    rg = RidgeCV(alphas=alphas).fit(Z, y)
    return {"coef": np.atleast_2d(rg.coef_), "intercept": np.atleast_1d(rg.intercept_), "alpha": np.atleast_1d(rg.alpha_)}


def predict_linear(Z: np.ndarray, head: dict[str, np.ndarray], task: str, n_classes: int | None):
    """``(prediction, proba_or_None)`` from the head's arrays."""
    logits = Z @ head["coef"].T + head["intercept"]
    if task != CLASSIFICATION:
        return logits, None
    if logits.shape[1] == 1:  # binary: one logit for the second class
        p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        local = np.column_stack([1.0 - p1, p1])
    else:
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        local = e / e.sum(axis=1, keepdims=True)
    classes = head["classes"]
    proba = np.zeros((Z.shape[0], int(n_classes or classes.max() + 1)))
    proba[:, classes] = local
    return classes[np.argmax(local, axis=1)], proba


class FeatureAugmentReuser(ReuserBase):
    """Linear model on the user's features plus the learnwares' outputs.

    Parameters
    ----------
    learnwares, task, n_classes: as for the other reusers.
    C: inverse regularisation of the logistic head (classification).
    alphas: ridge penalties tried by leave-one-out (regression).
    include_X: keep the user's own features next to the learnware outputs.
    """

    method = "feature-augment"
    needs_labels = True

    def __init__(self, learnwares=None, task: str = CLASSIFICATION, n_classes: int | None = None, C: float = 1.0, alphas=DEFAULT_ALPHAS, include_X: bool = True):
        self.learnwares = learnwares
        self.task = task
        self.n_classes = n_classes
        self.C = C
        self.alphas = alphas
        self.include_X = include_X

    def fit(self, X: Any, y: Any) -> FeatureAugmentReuser:
        self._check_params()
        Xa = self._check_X(X, fitting=True)
        ya = check_y(y, Xa.shape[0], self.task_, self.n_classes)
        outs, kinds = self._run(Xa) if self.n_learnwares_ else ([], [])
        if self.task_ == CLASSIFICATION:
            self._set_classes(outs, kinds, ya)
        return self._fit_outputs(Xa, outs, kinds, ya)

    def _fit_outputs(self, Xa: np.ndarray, outs: list, kinds: list, y: np.ndarray) -> FeatureAugmentReuser:
        F = self._features(Xa, outs, kinds)
        self.mean_ = F.mean(axis=0)
        sd = F.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.head_ = fit_linear((F - self.mean_) / self.scale_, y, self.task_, self.C, self.alphas)
        return self

    def _features(self, Xa: np.ndarray, outs: list, kinds: list) -> np.ndarray:
        cols = [Xa] if self.include_X or not outs else []
        for out, kind in zip(outs, kinds):
            if kind == "label":
                cols.append(np.eye(self.n_classes_)[out])
            else:
                cols.append(out)
        return np.concatenate(cols, axis=1)

    def _predict_both(self, X: Any):
        Xa = self._check_X(X, fitting=False)
        outs, kinds = self._run(Xa) if self.n_learnwares_ else ([], [])
        return self._predict_from_outputs(Xa, outs, kinds)

    def _predict_from_outputs(self, Xa, outs, kinds):
        F = (self._features(Xa, outs, kinds) - self.mean_) / self.scale_
        pred, proba = predict_linear(F, self.head_, self.task_, getattr(self, "n_classes_", None))
        return self._finish(pred, self.task_), proba

    def _get_state(self):
        meta, arrays = super()._get_state()
        meta["include_X"] = bool(self.include_X)
        arrays.update(mean=self.mean_, scale=self.scale_, **{f"head_{k}": v for k, v in self.head_.items()})
        return meta, arrays

    def _set_state(self, meta, arrays):
        super()._set_state(meta, arrays)
        self.mean_ = np.asarray(arrays["mean"])
        self.scale_ = np.asarray(arrays["scale"])
        self.head_ = {k[5:]: np.asarray(v) for k, v in arrays.items() if k.startswith("head_")}
