"""Paper-style evaluation, text market (sentences generated from topic vocabularies).

Corpus: 6 classes (2 sub-topics in each of 3 topic groups: sports, cooking, computing), sentences drawn
from each sub-topic's words, its group's words and filler words (tests/_dense_market.py).
Market: 12 learnwares, each a TF-IDF + multinomial naive Bayes pipeline on 2 random classes at
0.7/0.3 (200 sentences), with a text RKME (K=50) on the embeddings of the default embedder
(all-MiniLM-L6-v2 when lwdock[text] is installed, else hashing-384; the notes say which).
Users: 12, each 150 sentences from 3 random classes at 0.5/0.3/0.2. Every user fits a text RKME,
searches the dock (lwdock.search.api.search), and reuses the result (the mixture when there is one, else
the top single) with the job selector (routing by embedding) and by averaging. Models run in-process
(trusted) here.

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


def main() -> None:
    from _dense_market import _zip, semantic, text_classes
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    from lwdock.reuse.api import reuse
    from lwdock.search.api import search
    from lwdock.spec.embedders import MiniLMEmbedder
    from lwdock.spec.rkme_text import RKMETextSpec
    from lwdock import Dock

    t0 = time.perf_counter()
    emb = "all-MiniLM-L6-v2" if MiniLMEmbedder.available() else "hashing-384"
    n_classes = len(text_classes())
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-paper-text-") as t:
        tmp = Path(t)
        dock = Dock.init(tmp / "dock")
        ids, models = [], []
        for i in range(N_LEARNWARES):
            classes = rng.choice(n_classes, 2, replace=False)
            X, y = sample(classes, (140, 60), rng)
            clf = make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(X, y)
            spec = RKMETextSpec(K=50, random_state=0, embedder=emb).fit(X)
            kwargs = {"task": "Classification", "output_dim": n_classes, "model_file": "model.pkl", "output": "auto"}
            z = _zip(tmp / f"t{i}.zip", "sklearn_wrapper.py", kwargs, "RKMETextSpecification", spec.to_dict(), clf,
                     semantic(f"topics {i}", "Text", n_classes))
            ids.append(dock.submit(z, run_model=False).id)
            models.append(clf)
        t_market = time.perf_counter() - t0
        t_search = []
        for u in range(N_USERS):
            classes = rng.choice(n_classes, 3, replace=False)
            X, y = sample(classes, (75, 45, 30), rng)
            losses = np.array([_paper.loss("classification", y, m.predict(X)) for m in models])
            by_id = dict(zip(ids, losses))
            spec = RKMETextSpec(K=50, random_state=u, embedder=emb).fit(X)
            s0 = time.perf_counter()
            res = search(dock, spec, include_unchecked=True, k=10, max_mixture=5)
            t_search.append(time.perf_counter() - s0)
            ranked = res.ids
            sel, w = (list(res.mixture.ids), list(res.mixture.weights)) if res.mixture else (ranked[:1], None)
            r = {"mean": float(losses.mean()), "best": float(losses.min()), "top1": float(by_id[ranked[0]]),
                 "hit1": bool(np.isclose(by_id[ranked[0]], losses.min())),
                 "hit3": bool(np.isclose(min(by_id[i] for i in ranked[:3]), losses.min())),
                 "mixture_size": len(sel)}
            for method, key in (("job-selector", "job_selector"), ("average", "average")):
                with reuse(dock, sel, method, data=X, weights=w, trusted=True, random_state=u) as ens:
                    r[key] = _paper.loss("classification", y, ens.predict(X))
            results.append(r)
    rows = _paper.summarise(results, "classification")
    hit1 = np.mean([r["hit1"] for r in results])
    hit3 = np.mean([r["hit3"] for r in results])
    mix = np.mean([r["mixture_size"] for r in results])
    elapsed = time.perf_counter() - t0
    notes = (
        f"{N_LEARNWARES} text learnwares (TF-IDF + naive Bayes on 2 of 6 topic classes at 0.7/0.3, 200 sentences; "
        f"text RKME K=50 on {emb} embeddings), {N_USERS} users (3 classes at 0.5/0.3/0.2, 150 sentences). "
        f"Search hit rate: top-1 is the truly best learnware for {hit1:.0%} of users; the best is in the top 3 for "
        f"{hit3:.0%}. Mean mixture size {mix:.2f}; search {np.median(t_search) * 1e3:.0f} ms per user (median, warm). "
        f"Models run in-process (trusted). Market build {t_market:.0f} s, total {elapsed:.0f} s. "
        "Command: `.venv/bin/python benchmarks/bench_paper_text.py`."
    )
    report("paper_text", f"Paper-style: generated topic texts, {emb} (error = 1 - accuracy, lower is better)", rows,
           ["method", "error", "std over users", "users where it beats Mean"], notes,
           extra={"embedder": emb, "hit_rate_top1": hit1, "hit_rate_top3": hit3, "mean_mixture_size": mix,
                  "per_user": results, "seconds": elapsed})


if __name__ == "__main__":
    main()
