"""Paper-style evaluation, text market (sentences generated from topic vocabularies).

Corpus: 6 classes (2 sub-topics in each of 3 topic groups: sports, cooking, computing), sentences drawn
from each sub-topic's words, its group's words and filler words (tests/_dense_market.py).
Market: 12 learnwares, each a TF-IDF + multinomial naive Bayes pipeline on 2 random classes at
0.7/0.3 (200 sentences), with a text RKME (K=50) on the embeddings of the default embedder
(all-MiniLM-L6-v2 when lwdock[text] is installed, else hashing-384; the notes say which).
Users: 12, each 150 sentences from 3 random classes at 0.5/0.3/0.2. Every user fits a text RKME,
searches the dock (lwdock.search.api.search), and reuses the result (the mixture when there is one, else
the top single) with the job selector (routing by embedding) and by averaging. Models run in-process
(trusted) here. Two settings on the same market and users (_paper.SETTINGS): *hand-tuned*, a median-
heuristic gamma on the pooled learnware embeddings given to the dock and every spec, MMD ranking, greedy
mixture; *defaults*, no gamma anywhere and ``search()``'s defaults (verified re-rank, QP mixture; its
market is submitted with the full checks, since only usable learnwares are verified).

    .venv/bin/python benchmarks/bench_paper_text.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import _paper  # noqa: E402
from _common import report  # noqa: E402

N_LEARNWARES = 12
N_USERS = 12


def sample(classes, counts, rng):  # type: ignore[no-untyped-def]
    from _dense_market import sentences, text_classes

    names = text_classes()
    texts, labels = [], []
    for c, n in zip(classes, counts):
        texts += sentences(*names[int(c)], int(n), rng)
        labels += [int(c)] * int(n)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.asarray(labels)[order]


def run_setting(tmp: Path, hand_tuned: bool, emb: str) -> tuple[list[dict], float | None, float, float, list[float]]:
    """One setting on the same market and users (the same seeds). *hand-tuned*: the benchmark computes a
    median-heuristic gamma on the pooled learnware embeddings and gives it to the dock, every learnware
    spec and every user spec; MMD ranking, greedy mixture, submits without the model checks (as before).
    *defaults*: no gamma anywhere, ``search()`` defaults (verified re-rank, QP mixture), checked submits."""
    from _dense_market import _zip, semantic, text_classes
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    from lwdock.reuse.api import reuse
    from lwdock.search.api import search
    from lwdock.search.user import as_user_spec
    from lwdock.spec.rkme_text import RKMETextSpec
    from lwdock import Dock

    t0 = time.perf_counter()
    n_classes = len(text_classes())
    rng = np.random.default_rng(0)
    data = []
    for _ in range(N_LEARNWARES):
        classes = rng.choice(n_classes, 2, replace=False)
        data.append(sample(classes, (140, 60), rng))
    gamma = None
    if hand_tuned:
        embed = RKMETextSpec(embedder=emb).embed
        gamma = _paper.median_gamma(np.concatenate([embed(X) for X, _ in data]))
    dock = Dock.init(tmp / "dock", gamma=gamma)
    ids, models = [], []
    for i, (X, y) in enumerate(data):
        clf = make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(X, y)
        spec = RKMETextSpec(gamma=gamma, K=50, random_state=0, embedder=emb).fit(X)
        kwargs = {"task": "Classification", "output_dim": n_classes, "model_file": "model.pkl", "output": "auto"}
        z = _zip(tmp / f"t{i}.zip", "sklearn_wrapper.py", kwargs, "RKMETextSpecification", spec.to_dict(), clf,
                 semantic(f"topics {i}", "Text", n_classes))
        entry = dock.submit(z, run_model=not hand_tuned)
        if not hand_tuned and entry.status != "usable":
            raise RuntimeError(f"text learnware {i}: {entry.status}")
        ids.append(entry.id)
        models.append(clf)
    t_market = time.perf_counter() - t0
    how = dict(include_unchecked=True, rerank="mmd", method="greedy") if hand_tuned else dict(trusted=True)
    results, t_search = [], []
    for u in range(N_USERS):
        classes = rng.choice(n_classes, 3, replace=False)
        X, y = sample(classes, (75, 45, 30), rng)
        losses = np.array([_paper.loss("classification", y, m.predict(X)) for m in models])
        by_id = dict(zip(ids, losses))
        spec = RKMETextSpec(gamma=gamma, K=50, random_state=u, embedder=emb).fit(X)
        if not hand_tuned:  # the user's rows travel with the spec, as with `search --data`: the verified
            spec = as_user_spec(spec)  # re-rank runs the candidates on them (a spec alone has no model inputs)
            spec.rows = X
        s0 = time.perf_counter()
        res = search(dock, spec, k=10, max_mixture=5, **how)
        t_search.append(time.perf_counter() - s0)
        ranked = res.ids
        sel, w = (list(res.mixture.ids), list(res.mixture.weights)) if res.mixture else (ranked[:1], None)
        r = {"mean": float(losses.mean()), "best": float(losses.min()), "top1": float(by_id[ranked[0]]),
             "hit1": bool(np.isclose(by_id[ranked[0]], losses.min())),
             "hit3": bool(np.isclose(min(by_id[i] for i in ranked[:3]), losses.min())),
             "rank_best": next((k + 1 for k, i in enumerate(ranked) if np.isclose(by_id[i], losses.min())), 11),
             "mixture_size": len(sel), "verified": int((res.verification or {}).get("verified", 0))}
        for method, key in (("job-selector", "job_selector"), ("average", "average")):
            with reuse(dock, sel, method, data=X, weights=w, trusted=True, random_state=u) as ens:
                r[key] = _paper.loss("classification", y, ens.predict(X))
        results.append(r)
    return results, gamma, t_market, time.perf_counter() - t0, t_search


def main() -> None:
    from lwdock.spec.embedders import MiniLMEmbedder

    t0 = time.perf_counter()
    emb = "all-MiniLM-L6-v2" if MiniLMEmbedder.available() else "hashing-384"
    by_setting, gammas, t_market, secs, t_search = {}, {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-paper-text-") as t:
        for name, hand_tuned in _paper.SETTINGS:
            (Path(t) / name).mkdir()
            by_setting[name], gammas[name], t_market[name], secs[name], t_search[name] = run_setting(
                Path(t) / name, hand_tuned, emb)
    rows = _paper.summarise_settings(by_setting, "classification")
    stats = {name: {"hit_rate_top1": float(np.mean([r["hit1"] for r in res])),
                    "hit_rate_top3": float(np.mean([r["hit3"] for r in res])),
                    "mean_rank_best": float(np.mean([r["rank_best"] for r in res])),
                    "mean_mixture_size": float(np.mean([r["mixture_size"] for r in res])),
                    "mean_verified": float(np.mean([r["verified"] for r in res])),
                    "search_ms_median": float(np.median(t_search[name]) * 1e3)} for name, res in by_setting.items()}
    d, h = stats["defaults"], stats["hand-tuned"]
    elapsed = time.perf_counter() - t0
    notes = (
        f"{N_LEARNWARES} text learnwares (TF-IDF + naive Bayes on 2 of 6 topic classes at 0.7/0.3, 200 sentences; "
        f"text RKME K=50 on {emb} embeddings), {N_USERS} users (3 classes at 0.5/0.3/0.2, 150 sentences). "
        "Two settings on the same market and users: *hand-tuned*: the benchmark computes a median-heuristic gamma "
        f"on the pooled learnware embeddings ({gammas['hand-tuned']:g}) and gives it to the dock, every learnware "
        "spec and every user spec; MMD ranking (`rerank='mmd'`), greedy mixture, submits without the model checks "
        "(the previous pipeline). *defaults*: no gamma anywhere, `search()` defaults (verified re-rank, QP mixture), "
        "learnwares submitted with the full checks (the verified re-rank runs only learnwares checked as usable). "
        f"Hit@1 / hit@3 / mean rank of the best: hand-tuned {h['hit_rate_top1']:.2f} / {h['hit_rate_top3']:.2f} / "
        f"{h['mean_rank_best']:.2f}, defaults {d['hit_rate_top1']:.2f} / {d['hit_rate_top3']:.2f} / "
        f"{d['mean_rank_best']:.2f}. Candidates verified per user (mean): defaults {d['mean_verified']:.1f}. Mean mixture size: hand-tuned {h['mean_mixture_size']:.2f}, defaults "
        f"{d['mean_mixture_size']:.2f}. Search per user (median, warm): hand-tuned {h['search_ms_median']:.0f} ms, "
        f"defaults {d['search_ms_median']:.0f} ms (includes running the candidates). Reuse: the mixture when there "
        "is one, else the top single. Models run in-process (trusted). Seconds per setting (market build + users): "
        f"{', '.join(f'{k} {v:.0f} (market {t_market[k]:.0f})' for k, v in secs.items())}; total {elapsed:.0f} s. "
        "Command: `.venv/bin/python benchmarks/bench_paper_text.py`."
    )
    report("paper_text", f"Paper-style: generated topic texts, {emb} (error = 1 - accuracy, lower is better)", rows,
           ["setting", "method", "error", "std over users", "users where it beats Mean"], notes,
           extra={"embedder": emb, "gamma_hand_tuned": gammas["hand-tuned"], "settings": stats,
                  "per_user": by_setting, "seconds": elapsed})


if __name__ == "__main__":
    main()
