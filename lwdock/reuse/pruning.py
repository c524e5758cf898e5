"""Ensemble pruning: pick the learnwares and weights that do best on labelled rows.

Algorithm: greedy forward selection *with replacement* (ensemble selection in
the style of Caruana et al., 2004), deterministic and dependency-free.

1. Start from the best single learnware on the labelled rows.
2. Each round, try adding one more copy of every learnware; keep the addition
   that gives the best ensemble, but only if it is strictly better.
3. Stop when no addition helps or after ``max_rounds`` additions.
   The weights are the copy counts divided by their sum.

"Better" is lexicographic. For classification it means higher accuracy, then a
higher mean combined support for the true class (breaks ties between equally
accurate ensembles). For regression it means lower RMSE. Because the search
starts from the best single learnware and only accepts improvements, the
pruned ensemble is never worse than that learnware on the labelled rows.
Ties go to the lower learnware index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .base import CLASSIFICATION, check_y, combine, score
from .estimator import ReuserBase


def _better(a: tuple[float, float], b: tuple[float, float], eps: float = 1e-12) -> bool:
    if a[0] > b[0] + eps:
        return True
    return abs(a[0] - b[0]) <= eps and a[1] > b[1] + eps


class EnsemblePruningReuser(ReuserBase):
    """Greedy forward ensemble selection on labelled user rows.

    Parameters
    ----------
    learnwares, task, n_classes: as for the other reusers.
    max_rounds: most additions after the first learnware (ensemble size <= max_rounds + 1).
    """

    method = "ensemble-pruning"
    needs_labels = True

    def __init__(self, learnwares=None, task: str = CLASSIFICATION, n_classes: int | None = None, max_rounds: int = 20):
        self.learnwares = learnwares
        self.task = task
        self.n_classes = n_classes
        self.max_rounds = max_rounds

    def fit(self, X: Any, y: Any) -> EnsemblePruningReuser:
        self._check_params()
        if int(self.max_rounds) < 0:
            raise UsageError("max_rounds must be >= 0")
        Xa = self._check_X(X, fitting=True)
        ya = check_y(y, Xa.shape[0], self.task_, self.n_classes)
        outs, kinds = self._run(Xa)
        self._set_classes(outs, kinds, ya)
        return self._fit_outputs(Xa, outs, kinds, ya)

    def _fit_outputs(self, Xa: np.ndarray, outs: list[np.ndarray], kinds: list[str], y: np.ndarray) -> EnsemblePruningReuser:
        m = len(outs)
        nc = self._n_classes()

        def objective(counts: np.ndarray) -> tuple[float, float]:
            pred, proba, _ = combine(outs, kinds, counts / counts.sum(), self.task_, nc)
            if self.task_ == CLASSIFICATION:
                return score(y, pred, self.task_), float(proba[np.arange(len(y)), y].mean())
            return -score(y, pred, self.task_), 0.0

        singles = [objective(np.eye(m)[i]) for i in range(m)]
        best_i = max(range(m), key=lambda i: (singles[i], -i))
        counts = np.zeros(m)
        counts[best_i] = 1.0
        current = singles[best_i]
        trace = [current[0]]
        for _ in range(int(self.max_rounds)):
            trials = []
            for i in range(m):
                c = counts.copy()
                c[i] += 1
                trials.append((objective(c), -i, c))
            best = max(trials, key=lambda t: (t[0], t[1]))
            if not _better(best[0], current):
                break
            current, counts = best[0], best[2]
            trace.append(current[0])
        self.single_scores_ = np.array([s[0] if self.task_ == CLASSIFICATION else -s[0] for s in singles])
        self.weights_ = counts / counts.sum()
        self.selected_ = np.flatnonzero(self.weights_ > 0)
        self.validation_score_ = current[0] if self.task_ == CLASSIFICATION else -current[0]
        self.trace_ = np.abs(np.array(trace))
        return self

    def _predict_both(self, X: Any):
        Xa = self._check_X(X, fitting=False)
        sel = [int(i) for i in self.selected_]
        outs, kinds = self._run(Xa, which=sel)  # only the selected learnwares run
        full_outs: list = [None] * self.n_learnwares_
        full_kinds: list = [None] * self.n_learnwares_
        for i, o, k in zip(sel, outs, kinds):
            full_outs[i], full_kinds[i] = o, k
        return self._predict_from_outputs(Xa, full_outs, full_kinds)

    def _predict_from_outputs(self, Xa, outs, kinds):
        sel = [int(i) for i in self.selected_]
        pred, proba, _ = self._combine([outs[i] for i in sel], [kinds[i] for i in sel], self.weights_[sel])
        return self._finish(pred, self.task_), proba

    def _get_state(self):
        meta, arrays = super()._get_state()
        meta["validation_score"] = float(self.validation_score_)
        arrays.update(weights=self.weights_, selected=self.selected_, single_scores=self.single_scores_)
        return meta, arrays

    def _set_state(self, meta, arrays):
        super()._set_state(meta, arrays)
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        self.selected_ = np.asarray(arrays["selected"], dtype=np.int64)
        self.single_scores_ = np.asarray(arrays["single_scores"])
        self.validation_score_ = float(meta["validation_score"])
