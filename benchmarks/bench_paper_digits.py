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


def run_setting(hand_tuned: bool) -> tuple[list[dict], float | None, float]:
    """Build the market and evaluate every user under one setting (same market and users for both)."""
    from lwdock.reuse.execute import open_predictors

    t0 = time.perf_counter()
    _, Xte, _, yte = _paper.market.digits_split()
    with tempfile.TemporaryDirectory(prefix="bench-digits-") as t:
        dock, ids, gamma, items = _paper.digits_dock(Path(t) / "dock", N_LEARNWARES, hand_tuned=hand_tuned)
        names = {i: item[0] for i, item in zip(ids, items)}
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
    return results, gamma, time.perf_counter() - t0


def main() -> None:
    t0 = time.perf_counter()
    by_setting, gammas, secs = {}, {}, {}
    for name, hand_tuned in _paper.SETTINGS:
        by_setting[name], gammas[name], secs[name] = run_setting(hand_tuned)
    rows = _paper.summarise_settings(by_setting, "classification")
    stats = {name: {"hit_rate_top1": float(np.mean([r["hit1"] for r in res])),
                    "hit_rate_top3": float(np.mean([r["hit3"] for r in res])),
                    "mean_rank_best": float(np.mean([r["rank_best"] for r in res])),
                    "mean_mixture_size": float(np.mean([r["mixture_size"] for r in res]))} for name, res in by_setting.items()}
    elapsed = time.perf_counter() - t0
    d = stats["defaults"]
    notes = (
        f"{N_LEARNWARES} learnwares (4 classes at 0.4/0.4/0.1/0.1, 200 rows each, raw pixels 0-16), {N_USERS} users "
        f"(6 classes at 0.3/0.3/0.1x4, {USER_ROWS} held-out rows each). Two settings on the same market and users: "
        f"*hand-tuned*: the benchmark computes a median-heuristic gamma ({gammas['hand-tuned']:g}) and gives it to the "
        "dock, every pack and every user spec; ranking by MMD (`--rerank mmd`), greedy mixture (the old pipeline). "
        "*defaults*: no gamma anywhere (automatic specs, the dock's kernel per feature space), verified re-rank, QP "
        f"mixture. Defaults: hit@1 {d['hit_rate_top1']:.2f}, hit@3 {d['hit_rate_top3']:.2f}, mean rank of the best "
        f"{d['mean_rank_best']:.2f}, mean mixture size {d['mean_mixture_size']:.2f}. Seconds per setting (market build "
        f"with checked submits + users): {', '.join(f'{k} {v:.0f}' for k, v in secs.items())}. "
        "Command: `.venv/bin/python benchmarks/bench_paper_digits.py`."
    )
    per_user = {name: [{k: (v if not isinstance(v, (np.floating, np.bool_)) else v.item()) for k, v in r.items()
                        if k != "ranked"} for r in res] for name, res in by_setting.items()}
    report("paper_digits", "Paper-style: digits, homogeneous market (error = 1 - accuracy, lower is better)", rows,
           ["setting", "method", "error", "std over users", "users where it beats Mean"], notes,
           extra={"gamma_hand_tuned": gammas["hand-tuned"], "settings": stats, "per_user": per_user, "seconds": elapsed})


if __name__ == "__main__":
    main()
