"""Learning curves: how many labelled user rows before reuse stops helping?

For 10, 20, 50, 100, 200 and 500 labelled user rows: a self-trained model (lwdock's
user-only baseline: logistic regression or ridge on the user's features), ensemble
pruning over the search's top-5 learnwares, and feature augmentation on the top-1
learnware (the reference's protocol). Each point is the mean over users x repeats
(10 repeats up to 50 labels, 3 above), scored on the user's held-out test rows; the
job selector (no labels) is the flat reference line.

- digits: plain load_digits has too few rows for 500 labels at a user's 0.3/0.3/0.1x4
  class mix, so every image also appears shifted by one pixel in the four directions
  (5x the rows). The 40-learnware market is built as in bench_paper_digits from the
  shifted training split; users come from the shifted held-out split, labelled and
  test rows from disjoint source images.
- digits, unseen shift: the same users against the market of bench_paper_digits
  (plain digits only): the users' images are shifted in a way no learnware saw.
- regression: the 30-learnware segment market of bench_paper_regression; labelled
  and test rows are fresh draws from the user's segment mix.

    .venv/bin/python benchmarks/bench_learning_curves.py      # plots in docs/img/
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _paper  # noqa: E402
from _common import report  # noqa: E402

SIZES = (10, 20, 50, 100, 200, 500)
REPEATS = {10: 10, 20: 10, 50: 10, 100: 3, 200: 3, 500: 3}
N_USERS = 10
TEST_ROWS = 400
IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
METHODS = ("self-trained", "ensemble pruning", "feature augmentation")


def shifted(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each 8x8 digit plus its four one-pixel shifts (zero fill)."""
    imgs = X.reshape(-1, 8, 8)
    out = [imgs]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        s = np.roll(imgs, step, axis=axis)
        edge = [slice(None)] * 3
        edge[axis] = 0 if step == 1 else -1
        s[tuple(edge)] = 0
        out.append(s)
    return np.concatenate(out).reshape(-1, 64), np.tile(y, len(out))


def run_user(dock, ids, gamma, task, X_test, y_test, draw, seed):
    """{method: {n: [losses]}} plus the job selector's loss, for one user."""
    from lwdock import RKMETableSpec
    from lwdock.reuse.api import reuse
    from lwdock.reuse.augment import FeatureAugmentReuser
    from lwdock.reuse.baseline import BaselineModel
    from lwdock.reuse.execute import open_predictors
    from lwdock.reuse.pruning import EnsemblePruningReuser
    from lwdock.search.api import search

    nc = 10 if task == "classification" else None
    spec = RKMETableSpec(gamma=gamma, K=100, random_state=seed).fit(X_test)  # the user's unlabelled rows
    res = search(dock, spec, task=task.capitalize(), k=5)
    with reuse(dock, res.to_dict() if res.mixture else res.ids[:1], "job-selector", data=X_test, trusted=True, random_state=seed) as ens:
        js = _paper.loss(task, y_test, ens.predict(X_test))
    curves = {m: {n: [] for n in SIZES} for m in METHODS}
    rng = np.random.default_rng(seed)
    with open_predictors(dock, res.ids[:5], trusted=True) as handles:
        for n in SIZES:
            for _ in range(REPEATS[n]):
                X, y = draw(n, rng)
                models = {
                    "self-trained": BaselineModel(task=task, n_classes=nc),
                    "ensemble pruning": EnsemblePruningReuser(learnwares=handles, task=task, n_classes=nc),
                    "feature augmentation": FeatureAugmentReuser(learnwares=handles[:1], task=task, n_classes=nc),
                }
                for m, est in models.items():
                    curves[m][n].append(_paper.loss(task, y_test, est.fit(X, y).predict(X_test)))
    return curves, js


def aggregate(per_user: list[tuple[dict, float]]):
    rows, stats = [], {}
    for n in SIZES:
        row = {"labels": n, "runs": len(per_user) * REPEATS[n]}
        for m in METHODS:
            v = np.concatenate([np.asarray(c[m][n]) for c, _ in per_user])
            stats[(m, n)] = (float(v.mean()), float(v.std()))
            row[m] = f"{v.mean():.4f} ± {v.std():.4f}"
        rows.append(row)
    js = np.array([j for _, j in per_user])
    return rows, stats, (float(js.mean()), float(js.std()))


def plot(stats, js, metric: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for m, style in zip(METHODS, ("o-", "s-", "^-")):
        mean = np.array([stats[(m, n)][0] for n in SIZES])
        std = np.array([stats[(m, n)][1] for n in SIZES])
        ax.plot(SIZES, mean, style, label=m)
        ax.fill_between(SIZES, mean - std, mean + std, alpha=0.15)
    ax.axhline(js[0], color="gray", linestyle="--", label="job selector (no labels)")
    ax.set_xscale("log")
    ax.set_xticks(SIZES)
    ax.set_xticklabels([str(n) for n in SIZES])
    ax.set_xlabel("labelled user rows")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})  # no version stamp: the same numbers give the same file
    plt.close(fig)


def digits(tmp: Path, market_shifted: bool):
    """Users see every held-out digit and its one-pixel shifts; the market sees them too, or only plain digits."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = _paper.market.digits_split()
    pool = shifted(Xtr, ytr) if market_shifted else None
    dock, ids, gamma, _ = _paper.digits_dock(tmp / f"digits-{market_shifted}", 40, pool=pool)
    Xl, Xt, yl, yt = train_test_split(Xte, yte, test_size=0.4, random_state=0, stratify=yte)
    Xl, yl = shifted(Xl, yl)
    Xt, yt = shifted(Xt, yt)
    rng = np.random.default_rng(2)
    per_user = []
    for u in range(N_USERS):
        classes = _paper.user_classes(rng)
        X_test, y_test = _paper.market.skewed_sample(Xt, yt, classes, _paper.USER_RATIOS, TEST_ROWS, rng)

        def draw(n, r, classes=classes):
            return _paper.market.skewed_sample(Xl, yl, classes, _paper.USER_RATIOS, n, r)

        per_user.append(run_user(dock, ids, gamma, "classification", X_test, y_test, draw, seed=100 + u))
    return per_user, gamma


def regression(tmp: Path):
    seg = _paper.Segments(seed=0)
    dock, ids, gamma, _ = _paper.segments_dock(tmp / "regression", seg, 30)
    rng = np.random.default_rng(2)
    per_user = []
    for u in range(N_USERS):
        groups = _paper.user_classes(rng, seg.n_segments)
        X_test, y_test = seg.sample(groups, _paper.USER_RATIOS, TEST_ROWS, rng)

        def draw(n, r, groups=groups):
            return seg.sample(groups, _paper.USER_RATIOS, n, r)

        per_user.append(run_user(dock, ids, gamma, "regression", X_test, y_test, draw, seed=100 + u))
    return per_user, gamma


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-curves-") as t:
        for name, fn, metric, label in (
            ("curves_digits", lambda p: digits(p, True), "error", "digits (error = 1 - accuracy)"),
            ("curves_digits_unseen_shift", lambda p: digits(p, False), "error",
             "digits, market never saw shifted images (error)"),
            ("curves_regression", regression, "RMSE", "segment regression (RMSE)"),
        ):
            t1 = time.perf_counter()
            per_user, gamma = fn(Path(t))
            rows, stats, js = aggregate(per_user)
            png = IMG / f"learning_curve_{name.split('_', 1)[1]}.png"
            plot(stats, js, metric, f"Learning curve: {label}", png)
            notes = (
                f"{N_USERS} users, {TEST_ROWS} test rows each; mean ± std over users x repeats; lower is better. "
                f"Job selector with no labels: {js[0]:.4f} ± {js[1]:.4f}. Dock gamma {gamma:g}. "
                f"{time.perf_counter() - t1:.0f} s. Command: `.venv/bin/python benchmarks/bench_learning_curves.py`.\n\n"
                f"![{label}](img/{png.name})"
            )
            report(name, f"Learning curve: {label}", rows, ["labels", "runs", *METHODS], notes,
                   extra={"stats": {f"{m}@{n}": v for (m, n), v in stats.items()}, "job_selector": js, "plot": str(png)})
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
