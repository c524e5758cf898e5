"""A heterogeneous market on scikit-learn's bundled breast_cancer data (no download).

Learnwares are logistic regressions trained on different column subsets, named with
scikit-learn's feature names ("mean radius"); users hold other, overlapping subsets in another
order, named as in the UCI/Kaggle CSV ("radius_mean"). Learnware zips carry the semantic
``Input.Description`` names and the packed hetero stats, like ``lwdock pack`` writes them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from lwdock.hetero.stats import STATS_FILE, fit_stats, stats_to_json

MODEL_CODE = '''
import os

import numpy as np


class Model:
    """A linear model: softmax probabilities (classification) or values (regression)."""

    def __init__(self, regression=False):
        here = os.path.dirname(os.path.abspath(__file__))
        with np.load(os.path.join(here, "params.npz"), allow_pickle=False) as z:
            self.coef, self.intercept, self.mu, self.sd = z["coef"], z["intercept"], z["mu"], z["sd"]
        self.regression = regression
        self.input_shape = (self.coef.shape[1],)
        self.output_shape = (1 if regression else 2,)

    def predict(self, X):
        z = ((np.asarray(X, dtype=float) - self.mu) / self.sd) @ self.coef.T + self.intercept
        if self.regression:
            return z.reshape(len(z), -1)
        z = np.column_stack([-z[:, 0], z[:, 0]]) / 2 if z.shape[1] == 1 else z
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
'''


def uci_name(name: str) -> str:
    """'mean concave points' -> 'concave points_mean', 'radius error' -> 'radius_se'."""
    for prefix, suffix in (("mean ", "_mean"), ("worst ", "_worst")):
        if name.startswith(prefix):
            return name[len(prefix):] + suffix
    return name.replace(" error", "_se")


class LinearModel:
    """The trusted twin of MODEL_CODE (benchmarks and tests run it in-process)."""

    def __init__(self, clf, mu, sd, regression=False):
        self.clf, self.mu, self.sd, self.regression = clf, mu, sd, regression

    def predict(self, X):
        Z = (np.asarray(X, dtype=float) - self.mu) / self.sd
        return self.clf.predict(Z)[:, None] if self.regression else self.clf.predict_proba(Z)


def semantic(name: str, columns: list[str], task: str = "Classification", out: int = 2) -> dict:
    return {
        "Data": {"Type": "Class", "Values": ["Table"]},
        "Task": {"Type": "Class", "Values": [task]},
        "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
        "Scenario": {"Type": "Tag", "Values": ["Health"]},
        "License": {"Type": "Class", "Values": ["MIT"]},
        "Name": {"Type": "String", "Values": name},
        "Description": {"Type": "String", "Values": f"{name}: a heterogeneous test learnware"},
        "Input": {"Dimension": len(columns), "Description": {str(i): c for i, c in enumerate(columns)}},
        "Output": {"Dimension": out, "Description": {}},
    }


def learnware_zip(path: Path, X: np.ndarray, y: np.ndarray, columns: list[str], name: str,
                  regression: bool = False, stats: bool = True) -> tuple[Path, LinearModel]:
    """A learnware zip (linear model, table RKME, semantic names, packed hetero stats)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from lwdock.spec.rkme_table import RKMETableSpec

    mu, sd = X.mean(0), X.std(0) + 1e-12
    Z = (X - mu) / sd
    clf = Ridge(alpha=1.0).fit(Z, y) if regression else LogisticRegression(max_iter=2000).fit(Z, y)
    coef = np.atleast_2d(clf.coef_)
    params = io.BytesIO()
    np.savez(params, coef=coef, intercept=np.atleast_1d(clf.intercept_), mu=mu, sd=sd)
    spec = RKMETableSpec(K=30, random_state=0).fit(X).to_dict()
    yaml = ("model:\n  class_name: Model\n  module_path: __init__.py\n"
            f"  kwargs: {{regression: {str(regression).lower()}}}\n"
            "stat_specifications:\n  - module_path: learnware.specification\n"
            "    class_name: RKMETableSpecification\n    file_name: rkme.json\n    kwargs: {}\n")
    task, out = ("Regression", 1) if regression else ("Classification", 2)
    members = {"learnware.yaml": yaml, "__init__.py": MODEL_CODE, "params.npz": params.getvalue(),
               "rkme.json": json.dumps(spec),
               "semantic_specification.json": json.dumps(semantic(name, columns, task, out))}
    if stats:
        members[STATS_FILE] = stats_to_json(fit_stats(X, columns, K=50))
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return path, LinearModel(clf, mu, sd, regression)


class CancerMarket:
    """Learnwares on column subsets of breast_cancer; users on other subsets (UCI names, shuffled)."""

    def __init__(self, seed: int = 0, n_learnwares: int = 6, n_cols: int = 10):
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        self.X, self.y, self.names = data.data, data.target, list(data.feature_names)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.y))
        self.market_rows, self.user_rows = order[:300], order[300:]
        self.subsets = [np.sort(rng.choice(30, size=n_cols, replace=False)) for _ in range(n_learnwares)]

    def learnware_data(self, i: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        cols = self.subsets[i]
        return self.X[np.ix_(self.market_rows, cols)], self.y[self.market_rows], [self.names[c] for c in cols]

    def user(self, cols: list[int], seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The user's rows in the columns ``cols`` (shuffled order), with UCI-style names."""
        cols = list(np.random.default_rng(seed).permutation(cols))
        return self.X[np.ix_(self.user_rows, cols)], self.y[self.user_rows], [uci_name(self.names[c]) for c in cols]


def write_csv(path: Path, X: np.ndarray, names: list[str], y: np.ndarray | None = None,
              label: str = "label") -> Path:
    header = list(names) + ([label] if y is not None else [])
    rows = X if y is None else np.column_stack([X, y])
    with open(path, "w") as fh:
        fh.write(",".join(f'"{h}"' if "," in h else h for h in header) + "\n")
        for r in rows:
            fh.write(",".join(repr(float(v)) for v in r) + "\n")
    return path
