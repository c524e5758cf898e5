"""Shared pieces of the paper-style benchmarks (bench_paper_*.py, bench_learning_curves.py).

A *market* is a real Dock: each learnware is packed with ``lwdock.format.pack`` and
submitted with the full usability checks. Search is ``lwdock.search.api.search`` and
the reusers are lwdock's own. Only the model calls take the trusted in-process path
(``trusted=True``), for speed; the sandboxed runner gives the same outputs.

Scenarios (fixed seeds):
- digits: load_digits rows; learnwares on 4 classes at 0.4/0.4/0.1/0.1 (training
  split), users on 6 classes at 0.3/0.3/0.1/0.1/0.1/0.1 (held-out split).
- segments: synthetic regression; 10 segments, each with its own feature
  distribution (a shifted cluster) and its own target map. Learnwares and users
  mix segments with the same ratios as the digits scenario.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_learnwares"))

import market  # noqa: E402  (the sample market's data helpers: digits_split, skewed_sample)

MARKET_RATIOS = (0.4, 0.4, 0.1, 0.1)
USER_RATIOS = (0.3, 0.3, 0.1, 0.1, 0.1, 0.1)


def median_gamma(X: np.ndarray, seed: int = 0, rows: int = 1000) -> float:
    """The median heuristic, 1 / median squared distance between rows, to two significant digits."""
    rng = np.random.default_rng(seed)
    S = X[rng.choice(len(X), size=min(rows, len(X)), replace=False)].astype(np.float64)
    sq = (S**2).sum(1)
    d = sq[:, None] - 2 * S @ S.T + sq[None, :]
    med = float(np.median(d[np.triu_indices(len(S), 1)]))
    return float(f"{1.0 / med:.2g}")


def semantic(name: str, task: str, output_dim: int) -> dict[str, Any]:
    return {
        "Name": name, "Description": f"benchmark learnware {name}", "Data": "Table", "Task": task,
        "Library": "Scikit-learn", "Scenario": ["Education"], "License": "MIT",
        "Output": {"Dimension": output_dim, "Description": {}},
    }


def build_dock(path: Path, gamma: float | None, items: list[tuple[str, Any, np.ndarray, dict]], K: int = 100) -> tuple[Any, list[str]]:
    """A dock holding one learnware per item ``(name, fitted model, training X, semantic)``; returns (dock, ids)."""
    from lwdock import Dock
    from lwdock.format.pack import PackOptions, pack

    dock = Dock.init(path, gamma=gamma)
    ids = []
    with tempfile.TemporaryDirectory(prefix="lwdock-bench-") as t:
        tmp = Path(t)
        for name, model, X, sem in items:
            (tmp / "model.pkl").write_bytes(pickle.dumps(model, protocol=4))
            np.save(tmp / "train.npy", X)
            pack(tmp / "model.pkl", tmp / f"{name}.zip", sem, train_data=tmp / "train.npy",
                 options=PackOptions(K=K, seed=0, gamma=gamma))
            entry = dock.submit(tmp / f"{name}.zip", alias=name)  # full usability checks, sandboxed
            if entry.status != "usable":
                raise RuntimeError(f"{name}: {entry.status}")
            ids.append(entry.id)
    return dock, ids


# -- digits ----------------------------------------------------------------------


def digits_market(n_learnwares: int = 40, per_learnware: int = 200, seed: int = 0, pool=None):
    """[(name, classes, X, y)]: each learnware on 4 random classes of the training split (or of ``pool``)."""
    Xtr, ytr = pool if pool is not None else (lambda s: (s[0], s[2]))(market.digits_split())
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_learnwares):
        classes = tuple(int(c) for c in rng.choice(10, size=4, replace=False))
        X, y = market.skewed_sample(Xtr, ytr, classes, MARKET_RATIOS, per_learnware, rng)
        out.append((f"d{i:02d}-" + "".join(map(str, classes)), classes, X, y))
    return out


def digits_model(X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5)).fit(X, y)


SETTINGS = (("hand-tuned", True), ("defaults", False))  # (name, the benchmark computes one gamma for everyone)


def digits_dock(path: Path, n_learnwares: int = 40, pool=None, hand_tuned: bool = True):
    """(dock, ids, gamma, market items) for the digits market (on ``pool`` = (X, y) if given);
    ``hand_tuned=False``: no gamma anywhere (gamma None), as a user gets it."""
    items = digits_market(n_learnwares, pool=pool)
    gamma = median_gamma(np.concatenate([X for _, _, X, _ in items])) if hand_tuned else None
    dock, ids = build_dock(path, gamma, [(n, digits_model(X, y), X, semantic(n, "Classification", 10)) for n, _, X, y in items])
    return dock, ids, gamma, items


def user_classes(rng: np.random.Generator, n_classes: int = 10) -> tuple[int, ...]:
    return tuple(int(c) for c in rng.choice(n_classes, size=len(USER_RATIOS), replace=False))


# -- segments (regression) -----------------------------------------------------------


class Segments:
    """Synthetic tabular regression: ``n_segments`` shifted clusters, each with its own target map.

    Segment g: ``x ~ N(c_g, I)`` with ``c_g ~ N(0, spread^2 I)``;
    ``y = x . w_g + b_g + 0.5 * sin(x . u) + noise``, with ``w_g = w + delta_g``
    (a shared part plus a segment-specific shift) and noise sd ``noise``.
    """

    def __init__(self, n_segments: int = 10, dim: int = 8, spread: float = 2.5, shift: float = 1.0, noise: float = 0.3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.noise = noise
        self.centers = rng.normal(0.0, spread, size=(n_segments, dim))
        base = rng.normal(0.0, 1.0, size=dim)
        self.coef = base + rng.normal(0.0, shift, size=(n_segments, dim))
        self.bias = rng.normal(0.0, 2.0, size=n_segments)
        self.u = rng.normal(0.0, 1.0, size=dim) / np.sqrt(dim)

    @property
    def n_segments(self) -> int:
        return len(self.centers)

    def sample(self, segments: tuple[int, ...], ratios: tuple[float, ...], n: int, rng: np.random.Generator):
        Xs, ys = [], []
        for g, r in zip(segments, ratios):
            k = int(round(r * n))
            X = self.centers[g] + rng.normal(size=(k, self.dim))
            y = X @ self.coef[g] + self.bias[g] + 0.5 * np.sin(X @ self.u) + rng.normal(0.0, self.noise, size=k)
            Xs.append(X)
            ys.append(y)
        X, y = np.concatenate(Xs), np.concatenate(ys)
        order = rng.permutation(len(y))
        return X[order], y[order]


def segments_market(seg: Segments, n_learnwares: int = 30, per_learnware: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_learnwares):
        groups = tuple(int(g) for g in rng.choice(seg.n_segments, size=4, replace=False))
        X, y = seg.sample(groups, MARKET_RATIOS, per_learnware, rng)
        out.append((f"r{i:02d}-" + "".join(map(str, groups)), groups, X, y))
    return out


def segments_model(X: np.ndarray, y: np.ndarray):
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.1, random_state=0).fit(X, y)


def segments_dock(path: Path, seg: Segments, n_learnwares: int = 30, hand_tuned: bool = True):
    items = segments_market(seg, n_learnwares)
    gamma = median_gamma(np.concatenate([X for _, _, X, _ in items])) if hand_tuned else None
    dock, ids = build_dock(path, gamma, [(n, segments_model(X, y), X, semantic(n, "Regression", 1)) for n, _, X, y in items])
    return dock, ids, gamma, items


# -- one user, the paper's rows ---------------------------------------------------------


def loss(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """Classification error (1 - accuracy) or RMSE: lower is better for every row."""
    if task == "classification":
        return float(np.mean(np.asarray(pred).reshape(-1) != y))
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64).reshape(-1) - y) ** 2)))


def evaluate_user(dock: Any, ids: list[str], market_preds: list[np.ndarray], X: np.ndarray, y: np.ndarray, task: str,
                  gamma: float | None, n_classes: int | None, seed: int = 0) -> dict[str, Any]:
    """Mean/Best in market, Top-1 reuse, Job selector, Average ensemble, and search hits for one user.

    ``market_preds[i]`` is learnware ``ids[i]``'s prediction on ``X`` (computed once per user by the caller).
    ``gamma`` given: the old, hand-tuned pipeline (that gamma for the user's spec, MMD ranking, greedy
    mixture); None: lwdock's defaults (automatic spec, verified re-rank, QP mixture).
    """
    from lwdock import RKMETableSpec
    from lwdock.reuse.api import reuse
    from lwdock.search.api import search

    losses = np.array([loss(task, y, p) for p in market_preds])
    by_id = dict(zip(ids, losses))
    spec = RKMETableSpec(gamma=gamma, K=100, random_state=seed).fit(X)  # unlabelled user rows only
    how = dict(rerank="mmd", method="greedy") if gamma is not None else dict(trusted=True)
    res = search(dock, spec, task=task.capitalize(), k=10, max_mixture=5, **how)
    # a result without a mixture means "the top single" (read_selection misses the "singles" key: see report)
    found = res.to_dict() if res.mixture else res.ids[:1]
    ranked = res.ids
    out = {
        "mean": float(losses.mean()),
        "best": float(losses.min()),
        "top1": float(by_id[ranked[0]]),
        "hit1": bool(np.isclose(by_id[ranked[0]], losses.min())),
        "hit3": bool(np.isclose(min(by_id[i] for i in ranked[:3]), losses.min())),
        # rank of the first learnware as good as the best (11: not in the top 10)
        "rank_best": next((r + 1 for r, i in enumerate(ranked) if np.isclose(by_id[i], losses.min())), 11),
        "mixture_size": len(res.mixture.ids) if res.mixture else 1,
    }
    for method, key in (("job-selector", "job_selector"), ("average", "average")):
        with reuse(dock, found, method, data=X, trusted=True, random_state=seed) as ens:
            out[key] = loss(task, y, ens.predict(X))
    out["ranked"] = ranked
    return out


def summarise_settings(by_setting: dict[str, list[dict[str, Any]]], task: str) -> list[dict[str, Any]]:
    """:func:`summarise` per setting, then the search rows (hit@1, hit@3, mean rank of the best)."""
    metric = "error" if task == "classification" else "RMSE"
    rows = []
    for name, results in by_setting.items():
        rows += [{"setting": name, **r} for r in summarise(results, task)]
    for name, results in by_setting.items():
        for label, key in (("Search hit@1", "hit1"), ("Search hit@3", "hit3"), ("Mean rank of best (11 = not in top 10)", "rank_best")):
            rows.append({"setting": name, "method": label, metric: float(np.mean([r[key] for r in results])),
                         "std over users": "-", "users where it beats Mean": "-"})
    return rows


def summarise(results: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """The paper's rows: mean and std over users."""
    names = [("Mean in market", "mean"), ("Best in market", "best"), ("Top-1 reuse", "top1"),
             ("Job selector", "job_selector"), ("Average ensemble", "average")]
    metric = "error" if task == "classification" else "RMSE"
    rows = []
    for label, key in names:
        v = np.array([r[key] for r in results])
        rows.append({"method": label, metric: float(v.mean()), "std over users": float(v.std()),
                     "users where it beats Mean": f"{int(np.sum(v < np.array([r['mean'] for r in results])))}/{len(v)}" if key != "mean" else "-"})
    return rows


def market_predictions(handles: list[Any], X: np.ndarray, task: str) -> list[np.ndarray]:
    """Every market learnware's prediction on X (labels, or values); ``handles`` from ``open_predictors``."""
    from lwdock.reuse.base import labels_of, normalise_output
    from lwdock.reuse.execute import run_learnwares

    outs = []
    for raw in run_learnwares(handles, X):
        o, k = normalise_output(raw, X.shape[0], task, 10 if task == "classification" else None)
        outs.append(labels_of(o, k) if task == "classification" else o[:, 0])
    return outs
