"""Averaging: a data-free reuser that combines every learnware on every row.

- Classification: the mean of the probabilities when every learnware returns
  probabilities (used as they are: no softmax on top); otherwise a vote by
  label (a learnware returning scores votes for its arg-max class). Ties go
  to the smallest label.
- Regression: the mean of each output column separately.
- ``weights`` (e.g. the mixture weights from search) weight the mean or vote.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .base import CLASSIFICATION, check_weights, labels_of
from .estimator import ReuserBase

MODES = ("auto", "proba", "vote", "mean")


class AveragingReuser(ReuserBase):
    """Weighted average (regression, probabilities) or weighted vote (labels).

    Parameters
    ----------
    learnwares: Predictor handles.
    task: ``"classification"`` or ``"regression"``.
    n_classes: number of classes the learnwares predict (classification).
    weights: non-negative weights, one per learnware; uniform when None.
    mode: ``"auto"`` (probabilities when all learnwares give them, else vote),
        ``"vote"`` (always vote by label), ``"proba"`` (require probabilities),
        ``"mean"`` (regression).
    """

    method = "average"

    def __init__(self, learnwares=None, task: str = CLASSIFICATION, n_classes: int | None = None, weights=None, mode: str = "auto"):
        self.learnwares = learnwares
        self.task = task
        self.n_classes = n_classes
        self.weights = weights
        self.mode = mode

    def fit(self, X: Any = None, y: Any = None) -> AveragingReuser:
        """Data-free: ``X`` (optional) fixes the input width and the learnwares' output kinds; ``y`` is ignored."""
        self._check_params()
        if self.mode not in MODES:
            raise UsageError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.weights_ = check_weights(self.weights, self.n_learnwares_)
        self.output_kinds_ = None
        if X is not None:
            Xa = self._check_X(X, fitting=True)
            outs, kinds = self._run(Xa[: min(len(Xa), 256)])
            self._set_classes(outs, kinds)
        elif self.task_ == CLASSIFICATION:
            if self.n_classes is None:
                raise UsageError("averaging without data needs n_classes")
            self._set_classes([], [])
        return self

    def _predict_both(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        Xa = self._check_X(X, fitting=not hasattr(self, "n_features_in_"))
        return self._predict_from_outputs(Xa, *self._run(Xa))

    def _predict_from_outputs(self, Xa, outs, kinds):
        if self.task_ == CLASSIFICATION:
            if self.mode == "vote":
                outs, kinds = [labels_of(o, k) for o, k in zip(outs, kinds)], ["label"] * len(kinds)
            elif self.mode == "proba" and not all(k == "proba" for k in kinds):
                raise UsageError("mode='proba' needs every learnware to return probabilities", hint="use mode='auto'")
        pred, proba, self.combined_as_ = self._combine(outs, kinds, self.weights_)
        return self._finish(pred, self.task_), proba

    def _get_state(self):
        meta, arrays = super()._get_state()
        meta["mode"] = self.mode
        arrays["weights"] = self.weights_
        return meta, arrays

    def _set_state(self, meta, arrays):
        super()._set_state(meta, arrays)
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
