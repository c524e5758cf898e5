"""Image and text markets for the dense search and reuse tests (and the paper benchmarks).

Image: scikit-learn logistic regressions on ``load_digits`` seen as 1x8x8 images, each trained
on a class-skewed subset (90 % from its class group); image RKMEs with small, CPU-friendly
settings (the spec resizes to 32x32). Text: a corpus generated from topic vocabularies (three
topic groups of two sub-topics each, one class per sub-topic); learnwares are TF-IDF + naive
Bayes pipelines, one per topic group. Zips are built by hand with the packer's wrappers.
"""

from __future__ import annotations

import functools
import json
import pickle
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_GROUPS = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
# K=10 points, 30 rounds of 2 narrow random networks: ~1.5 s per spec on one core, and enough
# to tell the class groups apart (fewer rounds leave the fit error larger than the signal)
IMAGE_SPEC = dict(K=10, steps=30, step_size=0.1, n_models=2, net_width=16, batch_size=128)

TOPICS = {
    "sports": {
        "football": "goal striker referee penalty midfield keeper stadium league offside corner tackle pitch".split(),
        "tennis": "serve racket volley baseline deuce wimbledon backhand forehand ace tiebreak court umpire".split(),
    },
    "cooking": {
        "baking": "flour oven dough yeast bread cake butter sugar knead crust pastry whisk".split(),
        "grilling": "barbecue charcoal steak skewer smoke marinade grill burger sausage tongs flame ribs".split(),
    },
    "computing": {
        "databases": "query index table transaction schema join sql commit rollback database cursor replica".split(),
        "networks": "router packet latency bandwidth protocol firewall socket ethernet switch dns gateway tcp".split(),
    },
}
GROUP_WORDS = {
    "sports": "team match player season coach win score fans training championship".split(),
    "cooking": "recipe kitchen taste chef meal ingredients dinner flavor heat plate".split(),
    "computing": "server software data system computer code performance memory network cloud".split(),
}
FILLER = "the a of and to in with for on is was very really quite today then".split()
GROUPS = list(TOPICS)


def semantic(name: str, data: str, out: int, dim: int | None = None) -> dict[str, Any]:
    sem = {
        "Data": {"Type": "Class", "Values": [data]},
        "Task": {"Type": "Class", "Values": ["Classification"]},
        "Library": {"Type": "Class", "Values": ["Scikit-learn"]},
        "Scenario": {"Type": "Tag", "Values": ["Education"]},
        "License": {"Type": "Class", "Values": ["MIT"]},
        "Name": {"Type": "String", "Values": name},
        "Description": {"Type": "String", "Values": f"{name} ({data.lower()} test learnware)"},
        "Output": {"Dimension": out, "Description": {}},
    }
    if dim is not None:
        sem["Input"] = {"Dimension": dim, "Description": {}}
    return sem


def _zip(path: Path, wrapper: str, kwargs: dict[str, Any], spec_class: str, spec: dict, model: Any, sem: dict) -> Path:
    yaml = ("model:\n  class_name: Model\n  module_path: __init__.py\n  kwargs: " + json.dumps(kwargs) + "\n"
            "stat_specifications:\n  - module_path: learnware.specification\n"
            f"    class_name: {spec_class}\n    file_name: rkme.json\n    kwargs: {{}}\n")
    code = resources.files("lwdock.format.templates").joinpath(wrapper).read_bytes()
    files = {"learnware.yaml": yaml, "__init__.py": code, "model.pkl": pickle.dumps(model), "rkme.json": json.dumps(spec),
             "semantic_specification.json": json.dumps(sem)}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():  # fixed timestamps: the same learnware gives the same zip (and id)
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return path


# -- image -------------------------------------------------------------------------------------
def digits_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 1, 8, 8).astype(np.float64), y.astype(np.int64)


def skewed(idx: np.ndarray, y: np.ndarray, group: list[int], n: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``idx``: ``frac`` of them from the classes in ``group``, the rest from the others."""
    inside, outside = idx[np.isin(y[idx], group)], idx[~np.isin(y[idx], group)]
    k = int(round(n * frac))
    return np.concatenate([rng.choice(inside, k, replace=False), rng.choice(outside, n - k, replace=False)])


class ImageMarket:
    """Learnwares (model, training rows, spec) on digits, one per class group; a held-out user pool."""

    def __init__(self, seed: int = 0, n_train: int = 250, groups: list[list[int]] | None = None,
                 spec_params: dict[str, Any] | None = None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from lwdock.spec.rkme_image import RKMEImageSpec

        self.X, self.y = digits_images()
        self.groups = groups or IMAGE_GROUPS
        self.spec_params = dict(spec_params or IMAGE_SPEC)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self.y))
        self.train_pool, self.test_pool = perm[:1000], perm[1000:]
        self.rng = rng
        self.models, self.specs, self.train = [], [], []
        for g in self.groups:
            rows = skewed(self.train_pool, self.y, g, n_train, 0.9, rng)
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
            self.models.append(clf.fit(self.X[rows].reshape(len(rows), -1), self.y[rows]))
            self.specs.append(RKMEImageSpec(random_state=seed, **self.spec_params).fit(self.X[rows]))
            self.train.append(rows)

    def user(self, j: int, n: int = 150, frac: float = 0.8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
        rows = skewed(self.test_pool, self.y, self.groups[j], n, frac, np.random.default_rng(seed))
        return self.X[rows], self.y[rows]

    def user_spec(self, X: np.ndarray, seed: int = 1) -> Any:
        from lwdock.spec.rkme_image import RKMEImageSpec

        return RKMEImageSpec(random_state=seed, **self.spec_params).fit(X)

    def zips(self, directory: Path) -> list[Path]:
        out = []
        for i, (model, spec) in enumerate(zip(self.models, self.specs)):
            kwargs = {"input_shape": [1, 8, 8], "task": "Classification", "output_dim": 10, "model_file": "model.pkl",
                      "output": "auto"}
            out.append(_zip(Path(directory) / f"img{i}.zip", "sklearn_wrapper.py", kwargs, "RKMEImageSpecification",
                            spec.to_dict(), model, semantic(f"digits group {i}", "Image", 10, dim=64)))
        return out


# -- text --------------------------------------------------------------------------------------
def text_classes() -> list[tuple[str, str]]:
    return [(g, t) for g in GROUPS for t in TOPICS[g]]


def sentences(group: str, topic: str, n: int, rng: np.random.Generator) -> list[str]:
    words, common = TOPICS[group][topic], GROUP_WORDS[group]
    out = []
    for _ in range(n):
        k = int(rng.integers(7, 12))
        pool = rng.choice(3, size=k, p=[0.6, 0.25, 0.15])
        toks = [str(rng.choice(words)) if p == 0 else str(rng.choice(common)) if p == 1 else str(rng.choice(FILLER))
                for p in pool]
        out.append(" ".join(toks))
    return out


def text_data(groups: list[str], n_per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Sentences of every sub-topic of ``groups``, labelled by global class index, shuffled."""
    rng = np.random.default_rng(seed)
    classes = text_classes()
    texts: list[str] = []
    labels: list[int] = []
    for c, (g, t) in enumerate(classes):
        if g in groups:
            texts += sentences(g, t, n_per_class, rng)
            labels += [c] * n_per_class
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.asarray(labels)[order]


class TextMarket:
    """One TF-IDF + naive Bayes learnware per topic group, with its text RKME."""

    def __init__(self, embedder: str = "hashing-384", seed: int = 0, n_per_class: int = 120, K: int = 30) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.naive_bayes import MultinomialNB
        from sklearn.pipeline import make_pipeline

        from lwdock.spec.rkme_text import RKMETextSpec

        self.embedder, self.K = embedder, K
        self.n_classes = len(text_classes())
        self.models, self.specs = [], []
        for i, g in enumerate(GROUPS):
            X, y = text_data([g], n_per_class, seed + i)
            self.models.append(make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(X, y))
            self.specs.append(RKMETextSpec(K=K, random_state=seed, embedder=embedder).fit(X))

    def user(self, groups: list[str], n_per_class: int = 40, seed: int = 100) -> tuple[list[str], np.ndarray]:
        return text_data(groups, n_per_class, seed)

    def user_spec(self, texts: list[str], seed: int = 1) -> Any:
        from lwdock.spec.rkme_text import RKMETextSpec

        return RKMETextSpec(K=self.K, random_state=seed, embedder=self.embedder).fit(texts)

    def zips(self, directory: Path) -> list[Path]:
        out = []
        for i, (model, spec) in enumerate(zip(self.models, self.specs)):
            kwargs = {"task": "Classification", "output_dim": self.n_classes, "model_file": "model.pkl", "output": "auto"}
            out.append(_zip(Path(directory) / f"txt{i}.zip", "sklearn_wrapper.py", kwargs, "RKMETextSpecification",
                            spec.to_dict(), model, semantic(f"{GROUPS[i]} topics", "Text", self.n_classes)))
        return out


# -- shared, fitted once per test session ------------------------------------------------------
@functools.lru_cache(maxsize=None)
def image_market(seed: int = 0) -> ImageMarket:
    """The image market of ``seed`` (three specs, ~5 s to fit): modules share one copy; do not mutate it."""
    return ImageMarket(seed=seed)


@functools.lru_cache(maxsize=None)
def text_market(embedder: str = "hashing-384") -> TextMarket:
    return TextMarket(embedder=embedder)
