"""A small learnware market built in the tests, plus checks that it behaves like one.

Gaussian classes in 10 dimensions. Each learnware is a logistic regression trained
on 4 classes with ratios 0.4/0.4/0.1/0.1 (the paper's image setup); it returns
probabilities over all 10 classes (0 for classes it never saw). A user holds
6 classes with ratios 0.3/0.3/0.1/0.1/0.1/0.1.
"""

from __future__ import annotations

import numpy as np
import pytest

from lwdock.reuse.base import InProcessPredictor

N_CLASSES = 10
DIM = 20


class SkewedModel:
    """Trusted test model: probabilities over all classes from a classifier that saw a few."""

    def __init__(self, clf, n_classes: int = N_CLASSES):
        self.clf = clf
        self.n_classes = n_classes

    def predict(self, X):
        p = np.zeros((len(X), self.n_classes))
        p[:, self.clf.classes_] = self.clf.predict_proba(X)
        return p


class LabelModel(SkewedModel):
    def predict(self, X):
        return self.clf.predict(X)


class Market:
    def __init__(self, seed: int = 0, n_learnwares: int = 8, per_learnware: int = 500):
        from sklearn.linear_model import LogisticRegression

        self.rng = np.random.default_rng(seed)
        self.means = self.rng.normal(0.0, 0.9, size=(N_CLASSES, DIM))
        self.models, self.class_sets, self.train = [], [], []
        for i in range(n_learnwares):
            classes = self.rng.choice(N_CLASSES, size=4, replace=False)
            X, y = self.draw(classes, [0.4, 0.4, 0.1, 0.1], per_learnware)
            clf = LogisticRegression(max_iter=2000).fit(X, y)
            self.models.append(clf)
            self.class_sets.append(classes)
            self.train.append(X)

    def draw(self, classes, ratios, n):
        counts = np.round(np.asarray(ratios) * n).astype(int)
        y = np.concatenate([np.full(c, k) for k, c in zip(classes, counts)])
        X = self.means[y] + self.rng.normal(size=(len(y), DIM))
        order = self.rng.permutation(len(y))
        return X[order], y[order]

    def user(self, n: int = 600):
        classes = self.rng.choice(N_CLASSES, size=6, replace=False)
        return self.draw(classes, [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], n)

    def predictors(self, kind: str = "proba"):
        cls = SkewedModel if kind == "proba" else LabelModel
        return [InProcessPredictor(cls(m), id=f"lw{i}") for i, m in enumerate(self.models)]

    def specs(self):
        from lwdock.spec.rkme_table import RKMETableSpec

        return [RKMETableSpec(K=30, random_state=i).fit(X) for i, X in enumerate(self.train)]


@pytest.fixture(scope="module")
def market():
    return Market()


def test_learnwares_are_skewed(market):
    X, y = market.user()
    accs = [np.mean(p.predict(X).argmax(1) == y) for p in market.predictors()]
    # each learnware knows 4 of 10 classes, the user holds 6: no single one is near perfect
    assert max(accs) < 0.9
    assert min(accs) < max(accs)
