"""Paper-style evaluation, homogeneous digits market (cf. the reference's image experiment).

Market: 40 learnwares, each a logistic regression on 200 training-split rows of
load_digits from 4 random classes at 0.4/0.4/0.1/0.1. Users: 30, each 200
held-out rows from 6 random classes at 0.3/0.3/0.1/0.1/0.1/0.1. Every user makes
an RKME from its unlabelled rows, searches the dock, and reuses the result.
Rows: classification error (1 - accuracy), mean and std over users.

    .venv/bin/python benchmarks/bench_paper_digits.py
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

N_LEARNWARES = 40
N_USERS = 30
USER_ROWS = 200


def main() -> None:
    from lwdock.reuse.execute import open_predictors

    t0 = time.perf_counter()
    _, Xte, _, yte = _paper.market.digits_split()
    with tempfile.TemporaryDirectory(prefix="bench-digits-") as t:
        dock, ids, gamma, items = _paper.digits_dock(Path(t) / "dock", N_LEARNWARES)
        names = {i: item[0] for i, item in zip(ids, items)}
        t_market = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        results = []
        with open_predictors(dock, ids, trusted=True) as handles:
            for u in range(N_USERS):
                classes = _paper.user_classes(rng)
                X, y = _paper.market.skewed_sample(Xte, yte, classes, _paper.USER_RATIOS, USER_ROWS, rng)
                preds = _paper.market_predictions(handles, X, "classification")
                r = _paper.evaluate_user(dock, ids, preds, X, y, "classification", gamma, 10, seed=u)
                r["classes"] = classes
                r["top3"] = [names[i] for i in r["ranked"][:3]]
                r["truly_best"] = names[ids[int(np.argmin([_paper.loss("classification", y, p) for p in preds]))]]
                results.append(r)
    rows = _paper.summarise(results, "classification")
    hit1 = np.mean([r["hit1"] for r in results])
    hit3 = np.mean([r["hit3"] for r in results])
    mix = np.mean([r["mixture_size"] for r in results])
    elapsed = time.perf_counter() - t0
    notes = (
        f"{N_LEARNWARES} learnwares (4 classes at 0.4/0.4/0.1/0.1, 200 rows each), {N_USERS} users "
        f"(6 classes at 0.3/0.3/0.1x4, {USER_ROWS} held-out rows each); dock gamma {gamma:g} (median heuristic). "
        f"Search hit rate: top-1 is the truly best learnware for {hit1:.0%} of users; the best is in the top 3 "
        f"for {hit3:.0%}. Mean mixture size {mix:.2f}. Market build (pack + checked submit) {t_market:.0f} s, total {elapsed:.0f} s. "
        "Command: `.venv/bin/python benchmarks/bench_paper_digits.py`."
    )
    per_user = [{k: (v if not isinstance(v, (np.floating, np.bool_)) else v.item()) for k, v in r.items() if k != "ranked"} for r in results]
    report("paper_digits", "Paper-style: digits, homogeneous market (error = 1 - accuracy, lower is better)", rows,
           ["method", "error", "std over users", "users where it beats Mean"], notes,
           extra={"gamma": gamma, "hit_rate_top1": hit1, "hit_rate_top3": hit3, "mean_mixture_size": mix, "per_user": per_user,
                  "seconds": elapsed})


if __name__ == "__main__":
    main()
