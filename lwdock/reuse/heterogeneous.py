"""Reusers for learnwares whose columns differ from the user's: align first, then reuse.

Each learnware is seen through a column map from the user's columns into its own
(:class:`ColumnMappedPredictor`, :mod:`lwdock.hetero.colmap`): matched columns copied through a 1-D
transform, missing ones imputed from the learnware's reduced set. The maps are plain arrays in
the ``.lwe`` artifact (``map{i}_*``), so ``lwdock predict`` applies them again.

* ``feature-align`` (no labels): the mean output of the aligned learnwares (values for
  regression, probabilities or vote shares for classification). By default the search's top 5:
  averaging five beat the mean learnware for every benchmark user, a single top-1 did not.
* ``aligned-feature-augment`` (``--method feature-augment`` on heterogeneous learnwares): that
  mean output becomes one extra feature next to the user's columns. Regression chooses its head
  by 5-fold cross-validation between the plain ridge head and a two-stage head (``y ~ a h + b``
  by least squares, then a ridge on the user's columns fits the residual: with few labels the
  correction shrinks to zero and the recalibrated learnwares remain); classification uses the
  logistic head of feature augmentation.
* ``aligned-ensemble-pruning`` (``--method ensemble-pruning``): greedy ensemble selection over
  the aligned learnwares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from ..errors import UsageError
from ..hetero.colmap import ColumnMap
from .augment import DEFAULT_ALPHAS, FeatureAugmentReuser, fit_linear, predict_linear
from .averaging import AveragingReuser
from .base import CLASSIFICATION
from .pruning import EnsemblePruningReuser

# up to 1e5: with a handful of labels the residual ridge must be able to shrink to nothing,
# leaving the recalibrated learnwares alone
TWO_STAGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
HEADS = ("auto", "two-stage", "plain")
MIN_CV_ROWS = 20  # below this the two-stage head is used without cross-validation (folds of < 4 rows)


class ColumnMappedPredictor:
    """A learnware behind a column map: ``predict(user rows) = learnware.predict(map(rows))``."""

    def __init__(self, inner: Any, colmap: ColumnMap, about: dict[str, Any] | None = None) -> None:
        self.inner = inner.inner if isinstance(inner, ColumnMappedPredictor) else inner
        self.colmap = colmap
        self.about = dict(about or {})
        self.id = getattr(self.inner, "id", None)
        self.output_kind = getattr(self.inner, "output_kind", None)

    @property
    def concurrent(self) -> bool:
        return bool(getattr(self.inner, "concurrent", False))

    def predict(self, X: np.ndarray) -> Any:
        return self.inner.predict(self.colmap.transform(X))

    def __deepcopy__(self, memo: dict) -> ColumnMappedPredictor:
        return self  # scikit-learn's clone keeps the handle (as for the other predictors)

    def __repr__(self) -> str:
        return f"ColumnMappedPredictor({self.id or type(self.inner).__name__}, {self.colmap.d_user}->{self.colmap.d_learnware})"


class _Aligned:
    """The members' column maps are part of the fitted state (mixed into each aligned reuser)."""

    def _check_aligned(self) -> None:
        bad = [i for i, lw in enumerate(self.learnwares or []) if not isinstance(lw, ColumnMappedPredictor)]
        if bad:
            raise UsageError(f"{self.method} takes aligned learnwares (ColumnMappedPredictor); learnware {bad[0]} is not",
                             hint="build it with lwdock.reuse.api.reuse, which aligns the columns first")

    def _get_state(self):  # type: ignore[no-untyped-def]
        meta, arrays = super()._get_state()  # type: ignore[misc]
        for i, lw in enumerate(self.learnwares):
            arrays.update(lw.colmap.arrays(f"map{i}_"))
        meta["alignment"] = [dict(lw.about) for lw in self.learnwares]
        return meta, arrays

    def _set_state(self, meta, arrays):  # type: ignore[no-untyped-def]
        super()._set_state(meta, arrays)  # type: ignore[misc]
        about = meta.get("alignment") or [{}] * len(self.learnwares)
        self.learnwares = [ColumnMappedPredictor(h, ColumnMap.from_arrays(arrays, f"map{i}_"), about[i] if i < len(about) else {})
                           for i, h in enumerate(self.learnwares)]


class FeatureAlignReuser(_Aligned, AveragingReuser):
    """Label-free: the mean output of the aligned learnwares."""

    method = "feature-align"

    def fit(self, X: Any = None, y: Any = None) -> FeatureAlignReuser:
        self._check_aligned()
        return super().fit(X, y)  # type: ignore[return-value]


class AlignedPruningReuser(_Aligned, EnsemblePruningReuser):
    """Ensemble pruning over aligned learnwares."""

    method = "aligned-ensemble-pruning"

    def fit(self, X: Any, y: Any) -> AlignedPruningReuser:
        self._check_aligned()
        return super().fit(X, y)  # type: ignore[return-value]


class AlignedAugmentReuser(_Aligned, FeatureAugmentReuser):
    """The user's columns plus the aligned learnwares' mean output, under a linear head.

    ``head`` (regression): "auto" (two-stage or plain, by 5-fold cross-validation), "two-stage"
    or "plain"; classification always uses the logistic head.
    """

    method = "aligned-feature-augment"

    def __init__(self, learnwares=None, task: str = CLASSIFICATION, n_classes: int | None = None, C: float = 1.0,
                 alphas=DEFAULT_ALPHAS, include_X: bool = True, head: str = "auto"):
        super().__init__(learnwares, task, n_classes, C, alphas, include_X)
        self.head = head

    def fit(self, X: Any, y: Any) -> AlignedAugmentReuser:
        self._check_aligned()
        return super().fit(X, y)  # type: ignore[return-value]

    def _features(self, Xa: np.ndarray, outs: list, kinds: list) -> np.ndarray:
        _, proba, _ = self._combine(outs, kinds, np.full(len(outs), 1.0 / len(outs)))
        h = proba if self.task_ == CLASSIFICATION else sum(outs) / len(outs)
        return np.concatenate([Xa, h], axis=1) if self.include_X else h

    def _fit_outputs(self, Xa: np.ndarray, outs: list, kinds: list, y: np.ndarray) -> AlignedAugmentReuser:
        if self.head not in HEADS:
            raise UsageError(f"head must be one of {', '.join(HEADS)}, not {self.head!r}")
        F = self._features(Xa, outs, kinds)
        self.mean_ = F.mean(axis=0)
        sd = F.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        Z = (F - self.mean_) / self.scale_
        k = F.shape[1] - (Xa.shape[1] if self.include_X else 0)
        self.head_used_ = self._choose(Z, y, k)
        if self.head_used_ == "two-stage":
            self.head_ = _two_stage(Z, y, k)
        else:
            self.head_ = fit_linear(Z, y, self.task_, self.C, self.alphas)
        return self

    def _choose(self, Z: np.ndarray, y: np.ndarray, k: int) -> str:
        if self.task_ == CLASSIFICATION or y.ndim != 1 or k == Z.shape[1]:
            return "plain"
        if self.head != "auto":
            return self.head
        if len(y) < MIN_CV_ROWS:
            return "two-stage"
        err = {"two-stage": 0.0, "plain": 0.0}
        for tr, te in KFold(5, shuffle=True, random_state=0).split(Z):
            for name in err:
                head = _two_stage(Z[tr], y[tr], k) if name == "two-stage" else fit_linear(Z[tr], y[tr], self.task_, self.C, self.alphas)
                pred, _ = predict_linear(Z[te], head, self.task_, None)
                err[name] += float(((pred[:, 0] - y[te]) ** 2).sum())
        return "two-stage" if err["two-stage"] <= err["plain"] else "plain"

    def _get_state(self):  # type: ignore[no-untyped-def]
        meta, arrays = super()._get_state()
        meta["head_used"] = self.head_used_
        return meta, arrays

    def _set_state(self, meta, arrays):  # type: ignore[no-untyped-def]
        super()._set_state(meta, arrays)
        self.head_used_ = meta.get("head_used", "plain")


def _two_stage(Z: np.ndarray, y: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Recalibrate the learnwares' output (``y ~ a h + b``, the last ``k`` columns of ``Z``), then a
    ridge on the user's columns fits what is left; one linear head over all columns."""
    H = np.column_stack([Z[:, -k:], np.ones(len(y))])
    cal = np.linalg.lstsq(H, y, rcond=None)[0]
    ridge = RidgeCV(alphas=np.asarray(TWO_STAGE_ALPHAS)).fit(Z[:, :-k], y - H @ cal)
    coef = np.concatenate([np.atleast_1d(ridge.coef_), cal[:k]])[None, :]
    return {"coef": coef, "intercept": np.atleast_1d(ridge.intercept_ + cal[k]), "alpha": np.atleast_1d(ridge.alpha_)}


ALIGNED_REUSERS = {"feature-align": FeatureAlignReuser, "aligned-feature-augment": AlignedAugmentReuser,
                   "aligned-ensemble-pruning": AlignedPruningReuser}
