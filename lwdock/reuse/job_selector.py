"""Job selector: a data-free reuser that routes each row to one learnware.

1. Mixture weights ``w``: given (from search), or computed from the user's
   unlabelled rows as the simplex QP ``min 1/2 w'Tw - v'w`` with
   ``T_ij = <R_i, R_j>`` and ``v_i = <R_user, R_i>`` (``solve_simplex_qp``).
2. Herd ``max(min_per_learnware, round(herding_num * w_i))`` points from each
   learnware's RKME; a point's label is the index of the learnware it came from.
3. Fit the selector on the herded points (features standardised by the herded
   mean and spread), then send each user row to the learnware it picks.

Selector choice: ``"knn"`` (default) is a distance-weighted k-nearest-neighbour
vote. It is chosen because the ``.lwe`` artifact stores no pickles: a k-NN
selector *is* its herded points and labels, so loading rebuilds exactly the
same selector with no training and no randomness. ``"logistic"`` (multinomial
logistic regression, stored as its coefficients) is the linear alternative.
Gradient-boosted trees would route similarly but can only be stored by
retraining at load, which ties the routing to the scikit-learn version.

Text (the reference's text path, through embeddings): the specs are text RKMEs, so the herded
points live in the embedding space of the specs' embedder. The selector is trained there; each
user text is embedded with that same embedder (``RKMETextSpec(embedder=...).embed``) to be
routed, and the chosen learnware receives the raw string. The mixture weights come from a text
RKME of the user's texts made with the same embedder.

Images are refused: image RKME points live in the spec's standardised (and whitened) space,
not in pixel space, and the reference's image selector (trained on those points, applied to raw
pixels, mixing RBF and NNGP products) is unreliable; the reference's own image experiment does
not use it. Use the average reuser for images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from ..errors import UsageError
from ..spec.qp import solve_simplex_qp
from ..spec.registry import IMAGE, TEXT
from ..spec.rkme_text import RKMETextSpec
from .base import CLASSIFICATION, check_weights, check_X, input_kind_of, labels_of
from .estimator import ReuserBase

SELECTORS = ("knn", "logistic")
TEXT_HERDING_NOISE = 0.02  # embeddings are unit vectors: the table default (0.25 per axis) would swamp them
TEXT_HERDING_PER_POINT = 10


def _text_embedder(specs: list[Any]) -> str:
    names = {str(getattr(s, "embedder_", None) or getattr(s, "embedder", "")) for s in specs}
    if len(names) != 1:
        raise UsageError(f"the learnwares' text specs were made by different embedders ({', '.join(sorted(names))}); "
                         "the job selector needs one embedding space")
    return names.pop()


def embed_texts(texts: Any, embedder: str) -> np.ndarray:
    """User texts embedded by the learnware specs' embedder (the selector's input space)."""
    return RKMETextSpec(embedder=embedder).embed(texts)


def mixture_weights(specs: list[Any], X: Any, random_state: int = 0) -> np.ndarray:
    """Simplex mixture weights that best explain the user's rows by the learnwares' RKMEs."""
    m = len(specs)
    if m == 1:
        return np.ones(1)
    first = specs[0]
    if str(getattr(first, "type", "")) == TEXT.name:
        user = type(first)(gamma=first.gamma, embedder=_text_embedder(specs), random_state=random_state).fit(list(X))
    else:
        user = type(first)(gamma=getattr(first, "gamma", 0.1), random_state=random_state).fit(X)
    T = np.array([[specs[i].inner_prod(specs[j]) for j in range(m)] for i in range(m)])
    v = np.array([user.inner_prod(s) for s in specs])
    w, _ = solve_simplex_qp(T, v)
    return w


class JobSelectorReuser(ReuserBase):
    """Route each row to one learnware with a selector trained on herded RKME samples.

    Parameters
    ----------
    learnwares: Predictor handles.
    specs: one RKME per learnware, each with ``herding(T, random_state)`` and ``inner_prod``.
    task, n_classes: as for :class:`~lwdock.reuse.averaging.AveragingReuser`.
    weights: mixture weights; computed from ``X`` in ``fit`` when None (uniform without ``X``).
    herding_num: total herded points (split by weight).
    min_per_learnware: every learnware gets at least this many points.
    selector: ``"knn"`` or ``"logistic"`` (see module doc).
    n_neighbors: k for the k-NN selector.
    random_state: seed for herding and the user RKME.
    """

    method = "job-selector"

    def __init__(
        self,
        learnwares=None,
        specs=None,
        task: str = CLASSIFICATION,
        n_classes: int | None = None,
        weights=None,
        herding_num: int = 1000,
        min_per_learnware: int = 5,
        selector: str = "knn",
        n_neighbors: int = 10,
        random_state: int | None = 0,
    ):
        self.learnwares = learnwares
        self.specs = specs
        self.task = task
        self.n_classes = n_classes
        self.weights = weights
        self.herding_num = herding_num
        self.min_per_learnware = min_per_learnware
        self.selector = selector
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X: Any = None, y: Any = None) -> JobSelectorReuser:
        """Data-free: ``X`` (unlabelled user rows, optional) sets the mixture weights; ``y`` is ignored."""
        self._check_params()
        if self.selector not in SELECTORS:
            raise UsageError(f"selector must be one of {', '.join(SELECTORS)}, not {self.selector!r}")
        specs = list(self.specs or [])
        if len(specs) != self.n_learnwares_:
            raise UsageError(f"job selector needs one RKME per learnware ({len(specs)} for {self.n_learnwares_})")
        if int(self.herding_num) < 1 or int(self.min_per_learnware) < 1:
            raise UsageError("herding_num and min_per_learnware must be positive")
        seed = 0 if self.random_state is None else int(self.random_state)
        types = {str(getattr(s, "type", "")) for s in specs}
        if IMAGE.name in types or (X is not None and input_kind_of(X) == "image"):
            raise UsageError(
                "the job selector does not support image learnwares: image RKME points live in the specs' "
                "standardised/whitened space, not in pixel space, so a selector trained on them cannot route "
                "raw images (the reference's image path is unreliable for the same reason)",
                hint="use --method average for images",
            )
        self.embedder_ = _text_embedder(specs) if TEXT.name in types else None
        if self.embedder_ is not None and len(types) > 1:
            raise UsageError("the job selector needs specs of one kind; got " + ", ".join(sorted(types)))
        Xa = self._check_X(X, fitting=True) if X is not None else None
        if self.embedder_ is not None and Xa is not None and self.input_kind_ != "text":
            raise UsageError("these learnwares take text: pass a list of strings")
        if self.embedder_ is not None and Xa is None:
            self.input_kind_, self.input_shape_, self.n_features_in_ = "text", (), 1
        if self.weights is not None:
            self.weights_ = check_weights(self.weights, self.n_learnwares_)
        elif Xa is not None:
            self.weights_ = mixture_weights(specs, Xa, seed)
        else:
            self.weights_ = check_weights(None, self.n_learnwares_)
        self.output_kinds_ = None
        if Xa is not None:
            outs, kinds = self._run(Xa[: min(len(Xa), 256)])
            self._set_classes(outs, kinds)
        elif self.task_ == CLASSIFICATION:
            if self.n_classes is None:
                raise UsageError("the job selector without data needs n_classes")
            self._set_classes([], [])
        self._fit_selector(specs, seed)
        return self

    def _fit_selector(self, specs: list[Any], seed: int) -> None:
        counts = [max(int(self.min_per_learnware), int(round(self.herding_num * w))) for w in self.weights_]
        text = getattr(self, "embedder_", None) is not None
        kw = {"noise_std": TEXT_HERDING_NOISE, "per_point": TEXT_HERDING_PER_POINT} if text else {}
        points = [np.asarray(s.herding(n, random_state=seed + i, **kw), dtype=np.float64)
                  for i, (s, n) in enumerate(zip(specs, counts))]
        # text: the herded points are embeddings, not inputs, so they are not checked against the input width
        Z = check_X(np.concatenate(points, axis=0), None if text else getattr(self, "n_features_in_", None),
                    what="herded samples")
        if not hasattr(self, "n_features_in_"):
            self.n_features_in_ = Z.shape[1]
        labels = np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(points)])
        self.center_ = Z.mean(axis=0)
        scale = Z.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        self.herded_ = (Z - self.center_) / self.scale_
        self.herded_labels_ = labels
        self.herding_counts_ = np.asarray(counts, dtype=np.int64)
        self._build_selector()

    def _build_selector(self) -> None:
        """Rebuild the selector from the stored arrays (also used when an artifact loads)."""
        labels = self.herded_labels_
        present = np.unique(labels)
        if present.size == 1:
            self.selector_ = None
            return
        if self.selector == "knn":
            k = max(1, min(int(self.n_neighbors), len(labels)))
            self.selector_ = KNeighborsClassifier(n_neighbors=k, weights="distance").fit(self.herded_, labels)
        else:
            if not hasattr(self, "coef_"):
                lr = LogisticRegression(C=1.0, max_iter=2000).fit(self.herded_, labels)
                self.coef_, self.intercept_, self.selector_classes_ = lr.coef_, lr.intercept_, lr.classes_
            self.selector_ = "logistic"

    def route(self, X: Any) -> np.ndarray:
        """Index of the learnware chosen for each row."""
        Xa = self._check_X(X, fitting=False)
        if self.selector_ is None:
            return np.full(Xa.shape[0], int(self.herded_labels_[0]), dtype=np.int64)
        E = embed_texts(Xa, self.embedder_) if getattr(self, "embedder_", None) else Xa
        Zs = (E - self.center_) / self.scale_
        if self.selector_ == "logistic":
            logits = Zs @ self.coef_.T + self.intercept_
            pick = (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else np.argmax(logits, axis=1)
            return np.asarray(self.selector_classes_)[pick].astype(np.int64)
        return np.asarray(self.selector_.predict(Zs), dtype=np.int64)

    def _predict_both(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        Xa = self._check_X(X, fitting=False)
        routes = self.route(Xa)
        parts = {}
        for i in np.unique(routes):  # each learnware runs on its own rows only
            rows = np.flatnonzero(routes == i)
            (out,), (kind,) = self._run(Xa[rows], which=[int(i)])
            parts[int(i)] = (rows, out, kind)
        return self._assemble(Xa.shape[0], routes, parts)

    def _predict_from_outputs(self, Xa, outs, kinds):
        routes = self.route(Xa)
        parts = {}
        for i in np.unique(routes):
            rows = np.flatnonzero(routes == i)
            parts[int(i)] = (rows, outs[int(i)][rows], kinds[int(i)])
        return self._assemble(Xa.shape[0], routes, parts)

    def _assemble(self, n: int, routes: np.ndarray, parts: dict) -> tuple[np.ndarray, np.ndarray | None]:
        self.routed_ = routes
        if self.task_ == CLASSIFICATION:
            pred = np.zeros(n, dtype=np.int64)
            proba = np.zeros((n, self.n_classes_))
            for rows, out, kind in parts.values():
                lab = labels_of(out, kind)
                pred[rows] = lab
                if kind == "proba":
                    proba[rows] = out
                else:
                    proba[rows, lab] = 1.0
            return pred, proba
        width = next(iter(parts.values()))[1].shape[1]
        pred = np.zeros((n, width))
        for rows, out, _ in parts.values():
            if out.shape[1] != width:
                raise UsageError("the routed learnwares return different numbers of outputs")
            pred[rows] = out
        return self._finish(pred, self.task_), None

    def _get_state(self):
        meta, arrays = super()._get_state()
        meta.update(selector=self.selector, n_neighbors=int(self.n_neighbors), herding_num=int(self.herding_num),
                    embedder=getattr(self, "embedder_", None))
        arrays.update(
            weights=self.weights_,
            center=self.center_,
            scale=self.scale_,
            herded=self.herded_,
            herded_labels=self.herded_labels_,
            herding_counts=self.herding_counts_,
        )
        if self.selector == "logistic" and self.selector_ is not None:
            arrays.update(coef=self.coef_, intercept=self.intercept_, selector_classes=np.asarray(self.selector_classes_))
        return meta, arrays

    def _set_state(self, meta, arrays):
        super()._set_state(meta, arrays)
        self.embedder_ = meta.get("embedder")
        for key in ("weights", "center", "scale", "herded", "herded_labels", "herding_counts"):
            setattr(self, key + "_", np.asarray(arrays[key]))
        if "coef" in arrays:
            self.coef_, self.intercept_, self.selector_classes_ = arrays["coef"], arrays["intercept"], arrays["selector_classes"]
        self._build_selector()
