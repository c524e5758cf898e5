"""Paper-style evaluation, tabular regression with segment shift (cf. the reference's PFS table experiment).

Synthetic data from ``_paper.Segments``: 10 segments (think stores), each with its
own feature distribution (a shifted cluster in 8-d) and its own target map (shared
coefficients plus a per-segment shift). Market: 30 learnwares, each a gradient-boosted
regressor on 300 rows from 4 random segments at 0.4/0.4/0.1/0.1. Users: 20, each 300
rows from 6 random segments at 0.3/0.3/0.1/0.1/0.1/0.1. Rows: RMSE, mean and std over users.

    .venv/bin/python benchmarks/bench_paper_regression.py
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

N_LEARNWARES = 30
N_USERS = 20
USER_ROWS = 300


def main() -> None:
    from lwdock.reuse.execute import open_predictors

    t0 = time.perf_counter()
    seg = _paper.Segments(seed=0)
    with tempfile.TemporaryDirectory(prefix="bench-regression-") as t:
        dock, ids, gamma, items = _paper.segments_dock(Path(t) / "dock", seg, N_LEARNWARES)
        names = {i: item[0] for i, item in zip(ids, items)}
        t_market = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        results = []
        with open_predictors(dock, ids, trusted=True) as handles:
            for u in range(N_USERS):
                groups = _paper.user_classes(rng, seg.n_segments)
                X, y = seg.sample(groups, _paper.USER_RATIOS, USER_ROWS, rng)
                preds = _paper.market_predictions(handles, X, "regression")
                r = _paper.evaluate_user(dock, ids, preds, X, y, "regression", gamma, None, seed=u)
                r["segments"] = groups
                r["top3"] = [names[i] for i in r["ranked"][:3]]
                r["truly_best"] = names[ids[int(np.argmin([_paper.loss("regression", y, p) for p in preds]))]]
                r["target_std"] = float(y.std())
                results.append(r)
    rows = _paper.summarise(results, "regression")
    hit1 = np.mean([r["hit1"] for r in results])
    hit3 = np.mean([r["hit3"] for r in results])
    mix = np.mean([r["mixture_size"] for r in results])
    ystd = np.mean([r["target_std"] for r in results])
    elapsed = time.perf_counter() - t0
    notes = (
        f"{N_LEARNWARES} learnwares (4 segments at 0.4/0.4/0.1/0.1, 300 rows each), {N_USERS} users "
        f"(6 segments at 0.3/0.3/0.1x4, {USER_ROWS} rows each); the users' targets have standard deviation {ystd:.2f} "
        f"(the RMSE of predicting each user's mean). Dock gamma {gamma:g} (median heuristic). "
        f"Search hit rate: top-1 is the truly best learnware for {hit1:.0%} of users; the best is in the top 3 "
        f"for {hit3:.0%}. Mean mixture size {mix:.2f}. Market build {t_market:.0f} s, total {elapsed:.0f} s. "
        "Command: `.venv/bin/python benchmarks/bench_paper_regression.py`."
    )
    per_user = [{k: (v.item() if isinstance(v, (np.floating, np.bool_)) else v) for k, v in r.items() if k != "ranked"} for r in results]
    report("paper_regression", "Paper-style: tabular regression with segment shift (RMSE, lower is better)", rows,
           ["method", "RMSE", "std over users", "users where it beats Mean"], notes,
           extra={"gamma": gamma, "hit_rate_top1": hit1, "hit_rate_top3": hit3, "mean_mixture_size": mix, "per_user": per_user,
                  "seconds": elapsed})


if __name__ == "__main__":
    main()
