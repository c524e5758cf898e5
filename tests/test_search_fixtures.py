"""Helpers for the search tests: Gaussian learnwares with fitted RKMEs, zipped for a Dock.

(No tests here; the other test_search_* modules import these.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

D = 4
GAMMA = 0.1


def means(n: int, d: int = D, seed: int = 0) -> np.ndarray:
    """Well-separated Gaussian centres (spread larger than the kernel width)."""
    return np.random.default_rng(seed).uniform(-6.0, 6.0, size=(n, d))


def sample(mean: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc=mean, scale=1.0, size=(n, mean.size))


def fit(X: np.ndarray, K: int = 30, gamma: float = GAMMA):  # type: ignore[no-untyped-def]
    from lwdock.spec.rkme_table import RKMETableSpec

    return RKMETableSpec(gamma=gamma, K=K, random_state=0).fit(X)


def learnware_specs(n: int, d: int = D, seed: int = 0, K: int = 30) -> tuple[np.ndarray, list[Any]]:
    mu = means(n, d, seed)
    return mu, [fit(sample(mu[i], 300, 1000 + i), K=K) for i in range(n)]


def semantic(name: str, *, d: int = D, task: str = "Classification", scenario: list[str] | None = None,
             library: str = "Scikit-learn", license: str = "MIT", description: str | None = None) -> dict[str, Any]:
    return {
        "Data": {"Type": "Class", "Values": ["Table"]},
        "Task": {"Type": "Class", "Values": [task]},
        "Library": {"Type": "Class", "Values": [library]},
        "Scenario": {"Type": "Tag", "Values": scenario or ["Business"]},
        "License": {"Type": "Class", "Values": [license]},
        "Name": {"Type": "String", "Values": name},
        "Description": {"Type": "String", "Values": description or f"{name}: a model for tests"},
        "Input": {"Dimension": d, "Description": {}},
        "Output": {"Dimension": 2, "Description": {}},
    }


def entry(i: int, name: str, status: str = "usable", alias: str | None = None, **kw: Any) -> dict[str, Any]:
    """An index entry as the Dock stores it (for semantic tests)."""
    return {"id": f"{i:02d}" + "ab" * 31, "alias": alias, "semantic": semantic(name, **kw), "status": status,
            "specs": [{"kind": "table", "dim": D, "gamma": GAMMA}]}


def zip_learnware(path: Path, spec: Any, name: str, **kw: Any) -> Path:
    from _factory import MODEL_CODE, write_zip, yaml_text

    from lwdock.spec.specfile import table_to_dict

    d = spec.dim
    files = {
        "learnware.yaml": yaml_text(d=d),
        "__init__.py": MODEL_CODE,
        "stat.json": json.dumps(table_to_dict(spec)),
        "requirements.txt": "numpy\n",
        "semantic_specification.json": json.dumps(semantic(name, d=d, **kw)),
    }
    return write_zip(path, files)
