"""Synthetic index entries with varied semantics (seeded), for bulk-loaded docks in tests and
benchmarks. Values vary in case and overlap on purpose: the filters ignore case, and names share
words so that substring and fuzzy matching both have work to do."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from lwdock.records import STATUSES, Entry

DATA = ["Table", "Image", "Text", "table"]
TASKS = ["Classification", "Regression", "Clustering", "Feature Extraction", "regression"]
LIBRARIES = ["Scikit-learn", "PyTorch", "TensorFlow", "Others", "scikit-learn"]
LICENSES = ["MIT", "Apache-2.0", "BSD", "Others"]
SCENARIOS = ["Business", "Financial", "Health", "Education", "Nature", "Transportation", "Architecture"]
WORDS = ["credit", "risk", "house", "price", "churn", "sales", "forecast", "digit", "review", "sentiment",
         "energy", "traffic", "crop", "yield", "fraud", "Scorer", "model", "étude"]


def lw_id(i: int, seed: int = 0) -> str:
    return hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()


def varied_entry(i: int, rng: random.Random, seed: int = 0) -> Entry:
    data_type = rng.choice(DATA)
    name = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
    semantic = {
        "Data": {"Type": "Class", "Values": [data_type]},
        "Task": {"Type": "Class", "Values": [rng.choice(TASKS)]},
        "Library": {"Type": "Class", "Values": [rng.choice(LIBRARIES)]},
        "License": {"Type": "Class", "Values": [rng.choice(LICENSES)]},
        "Scenario": {"Type": "Tag", "Values": rng.sample(SCENARIOS, rng.randint(0, 3))},
        "Name": {"Type": "String", "Values": f"{name} {i}"},
        "Description": {"Type": "String", "Values": f"A {name} learnware number {i}, {rng.choice(WORDS)} data."},
    }
    if rng.random() < 0.1:
        del semantic["Library"]  # a missing key is "no value", never a match
    specs = []
    if rng.random() < 0.85:
        kind = {"table": "table", "image": "image", "text": "text"}[data_type.lower()]
        specs.append({"kind": kind, "file_name": "stat.json", "class_name": "RKMETableSpecification",
                      "dim": rng.choice([8, 16, 32, 32, 64]), "gamma": 0.1, "num_points": 100})
    alias = f"lw-{i}" if rng.random() < 0.3 else None
    # timestamps collide often: newest-first order must break ties by id, as the index does
    created = f"2026-11-{1 + rng.randrange(28):02d}T{rng.randrange(3):02d}:00:00+00:00"
    return Entry(lw_id(i, seed), semantic, rng.choice(STATUSES), alias=alias, specs=specs, created=created,
                 size=1000 + i)


def varied_entries(n: int, seed: int = 0, start: int = 0) -> Iterator[Entry]:
    rng = random.Random(seed * 1_000_003 + start)
    for i in range(start, start + n):
        yield varied_entry(i, rng, seed)
