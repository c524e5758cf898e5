"""Reusers on the test market: real numbers, no hard-coded results."""

from __future__ import annotations

import numpy as np
import pytest
from test_reuse_market import N_CLASSES, Market

from lwdock.reuse.api import build_ensemble
from lwdock.reuse.augment import FeatureAugmentReuser
from lwdock.reuse.averaging import AveragingReuser
from lwdock.reuse.base import InProcessPredictor
from lwdock.reuse.baseline import BaselineModel
from lwdock.reuse.job_selector import JobSelectorReuser, mixture_weights
from lwdock.reuse.pruning import EnsemblePruningReuser


@pytest.fixture(scope="module")
def market():
    return Market(seed=0)


@pytest.fixture(scope="module")
def user(market):
    return market.user(1000)


@pytest.fixture(scope="module")
def specs(market):
    return market.specs()


def _acc(pred, y):
    return float(np.mean(np.asarray(pred) == y))


def test_averaging_over_mixture_beats_mean_single(market, user, specs):
    X, y = user
    predictors = market.predictors()
    singles = [_acc(p.predict(X).argmax(1), y) for p in predictors]
    w = mixture_weights(specs, X)
    mix = np.flatnonzero(w > 1e-3)
    reuser = AveragingReuser([predictors[i] for i in mix], n_classes=N_CLASSES, weights=w[mix]).fit(X)
    acc = _acc(reuser.predict(X), y)
    assert reuser.combined_as_ == "proba"
    assert acc > np.mean(singles) + 0.1
    assert reuser.predict_proba(X).shape == (len(X), N_CLASSES)
    assert np.allclose(reuser.predict_proba(X).sum(1), 1.0)


def test_averaging_probabilities_are_not_resoftmaxed():
    class Fixed:
        def __init__(self, p):
            self.p = np.asarray(p, dtype=float)

        def predict(self, X):
            return np.tile(self.p, (len(X), 1))

    a, b = [0.7, 0.2, 0.1], [0.1, 0.5, 0.4]
    X = np.zeros((3, 2))
    r = AveragingReuser([InProcessPredictor(Fixed(a)), InProcessPredictor(Fixed(b))], n_classes=3).fit(X)
    np.testing.assert_allclose(r.predict_proba(X)[0], (np.array(a) + np.array(b)) / 2)
    assert r.combined_as_ == "proba"


def test_vote_by_label_with_weights_and_ties():
    class Const:
        def __init__(self, label):
            self.label = label

        def predict(self, X):
            return np.full(len(X), self.label)

    X = np.zeros((4, 2))
    lws = [InProcessPredictor(Const(c)) for c in (2, 1, 1, 2)]
    assert set(AveragingReuser(lws, n_classes=3).fit(X).predict(X)) == {1}  # 2-2 tie -> smallest label
    heavy = AveragingReuser(lws, n_classes=3, weights=[3, 1, 1, 0]).fit(X)
    assert set(heavy.predict(X)) == {2}
    assert heavy.combined_as_ == "vote"


def test_regression_mean_is_per_column():
    class Lin:
        def __init__(self, W):
            self.W = np.asarray(W, dtype=float)

        def predict(self, X):
            return X @ self.W

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    W1, W2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    r = AveragingReuser([InProcessPredictor(Lin(W1)), InProcessPredictor(Lin(W2))], task="regression").fit(X)
    np.testing.assert_allclose(r.predict(X), X @ (W1 + W2) / 2)


def _cluster_market(seed=0, k=4, n=300):
    """Learnware i is a regressor trained on cluster i only; clusters are far apart."""
    from sklearn.linear_model import Ridge

    from lwdock.spec.rkme_table import RKMETableSpec

    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, size=(k, 5))
    centers = 8.0 * centers / np.linalg.norm(centers, axis=1, keepdims=True) + np.arange(k)[:, None] * 3.0
    lws, specs = [], []
    for i in range(k):
        X = centers[i] + rng.normal(size=(n, 5))
        y = X @ rng.normal(size=5) + i
        lws.append(InProcessPredictor(Ridge().fit(X, y), id=f"c{i}"))
        specs.append(RKMETableSpec(K=20, random_state=i).fit(X))
    counts = [60, 120, 30, 90][:k]
    Xu = np.concatenate([centers[i] + rng.normal(size=(c, 5)) for i, c in enumerate(counts)])
    truth = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
    return lws, specs, Xu, truth


def test_job_selector_routes_separated_clusters():
    lws, specs, Xu, truth = _cluster_market()
    r = JobSelectorReuser(lws, specs, task="regression", herding_num=400).fit(Xu)
    assert r.weights_.shape == (4,) and abs(r.weights_.sum() - 1) < 1e-9
    routed = r.route(Xu)
    assert np.mean(routed == truth) > 0.9
    # predicting each row with its routed learnware equals running that learnware on the row
    pred = r.predict(Xu)
    for i in range(4):
        rows = routed == i
        if rows.any():
            np.testing.assert_allclose(pred[rows], lws[i].predict(Xu[rows]))


def test_job_selector_logistic_selector_also_routes():
    lws, specs, Xu, truth = _cluster_market(seed=1)
    r = JobSelectorReuser(lws, specs, task="regression", herding_num=400, selector="logistic").fit(Xu)
    assert np.mean(r.route(Xu) == truth) > 0.9


def test_job_selector_classification_on_market(market, user, specs):
    X, y = user
    r = JobSelectorReuser(market.predictors(), specs, n_classes=N_CLASSES, herding_num=400).fit(X)
    singles = [_acc(p.predict(X).argmax(1), y) for p in market.predictors()]
    assert _acc(r.predict(X), y) > np.mean(singles)


def test_pruning_at_least_best_single_on_validation(market, user):
    X, y = user
    Xv, yv = X[:80], y[:80]
    r = EnsemblePruningReuser(market.predictors(), n_classes=N_CLASSES).fit(Xv, yv)
    singles = [_acc(p.predict(Xv).argmax(1), yv) for p in market.predictors()]
    assert _acc(r.predict(Xv), yv) >= max(singles)
    np.testing.assert_allclose(r.single_scores_, singles)
    assert abs(r.weights_.sum() - 1) < 1e-12 and len(r.selected_) >= 1
    assert r.validation_score_ == pytest.approx(_acc(r.predict(Xv), yv))


def test_pruning_label_outputs_and_regression():
    m = Market(seed=3, n_learnwares=5)
    X, y = m.user(300)
    r = EnsemblePruningReuser(m.predictors(kind="label"), n_classes=N_CLASSES).fit(X[:60], y[:60])
    singles = [_acc(p.predict(X[:60]), y[:60]) for p in m.predictors(kind="label")]
    assert _acc(r.predict(X[:60]), y[:60]) >= max(singles)
    lws, _, Xu, _ = _cluster_market(k=3)
    yu = lws[0].predict(Xu) * 0.5 + lws[1].predict(Xu) * 0.5
    rr = EnsemblePruningReuser(lws, task="regression", max_rounds=10).fit(Xu, yu)
    single_rmse = [np.sqrt(np.mean((p.predict(Xu) - yu) ** 2)) for p in lws]
    assert np.sqrt(np.mean((rr.predict(Xu) - yu) ** 2)) <= min(single_rmse)


def test_feature_augment_with_50_labels_beats_user_only(market, user):
    X, y = user
    Xl, yl, Xt, yt = X[:50], y[:50], X[50:], y[50:]
    aug = FeatureAugmentReuser(market.predictors(), n_classes=N_CLASSES).fit(Xl, yl)
    base = BaselineModel(n_classes=N_CLASSES).fit(Xl, yl)
    assert _acc(aug.predict(Xt), yt) > _acc(base.predict(Xt), yt)
    p = aug.predict_proba(Xt)
    assert p.shape == (len(Xt), N_CLASSES) and np.allclose(p.sum(1), 1)


def test_feature_augment_regression_uses_learnwares():
    class Curve:  # a nonlinear learnware a linear user model cannot imitate
        def predict(self, X):
            return np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1] ** 2, np.cos(X[:, 2])])

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    target = 1.5 * (np.sin(2 * X[:, 0]) + X[:, 1] ** 2) + 0.3 * X[:, 3] + rng.normal(0, 0.1, 400)
    lws = [InProcessPredictor(Curve())]
    aug = FeatureAugmentReuser(lws, task="regression").fit(X[:40], target[:40])
    base = BaselineModel(task="regression").fit(X[:40], target[:40])
    rmse = lambda m: np.sqrt(np.mean((m.predict(X[40:]) - target[40:]) ** 2))  # noqa: E731
    assert rmse(aug) < 0.5 * rmse(base)


def test_report_has_baseline_and_singles(market, user):
    X, y = user
    ens = build_ensemble(market.predictors(), "feature-augment", "classification", N_CLASSES, labeled=(X[:50], y[:50]))
    rep = ens.report
    assert rep["metric"] == "accuracy" and rep["n_labeled"] == 50
    assert 0 <= rep["baseline"] <= 1 and 0 <= rep["reuse"] <= 1
    assert len(rep["single"]) == len(market.predictors())


def test_sklearn_pipeline_clone_and_no_mutation(market, user):
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = user
    X0, y0 = X.copy(), y.copy()
    est = EnsemblePruningReuser(market.predictors(), n_classes=N_CLASSES)
    pipe = make_pipeline(FunctionTransformer(), est).fit(X[:80], y[:80])
    pred = pipe.predict(X)
    assert pipe.predict_proba(X).shape == (len(X), N_CLASSES)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    c = clone(est)
    assert c.learnwares[0] is est.learnwares[0]  # handles are shared, not copied
    assert not hasattr(c, "weights_")
    np.testing.assert_array_equal(c.fit(X[:80], y[:80]).predict(X), pred)
    assert est.get_params()["max_rounds"] == 20
