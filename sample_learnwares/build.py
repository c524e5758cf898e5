"""Rebuild the sample learnwares (``make samples``), reproducibly.

Each sample is a small scikit-learn model trained on a bundled dataset, packed
with ``lwdock pack``'s library function. Output: ``sample_learnwares/*.zip``.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import market  # noqa: E402

K = 50  # reduced-set size: small zips, still a faithful spec


def _pack(tmp: Path, name: str, model, X: np.ndarray, semantic: dict) -> Path:
    from lwdock.format.pack import PackOptions, pack

    model_file = tmp / f"{name}.pkl"
    model_file.write_bytes(pickle.dumps(model, protocol=4))
    data_file = tmp / f"{name}.npy"
    np.save(data_file, X)
    out = HERE / f"{name}.zip"
    options = PackOptions(K=min(K, len(X) - 1), seed=market.SEED, gamma=market.GAMMA)
    info = pack(model_file, out, semantic, train_data=data_file, options=options)
    print(f"{out.name}: {info.id[:12]} ({out.stat().st_size // 1024} KiB)")
    return out


def _semantic(name, description, task, output_dim, scenario="Education", library="Scikit-learn"):
    return {
        "Name": name,
        "Description": description,
        "Data": "Table",
        "Task": task,
        "Library": library,
        "Scenario": [scenario],
        "License": "MIT",
        "Output": {"Dimension": output_dim, "Description": {}},
    }


def main() -> None:
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for old in HERE.glob("*.zip"):
        old.unlink()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, classes, X, y in market.digits_learnware_data():
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5)).fit(X, y)
            desc = f"Handwritten digit classifier (8x8 pixels) trained mostly on digits {classes[0]} and {classes[1]}"
            _pack(tmp, name, model, X, _semantic(name, desc, "Classification", 10))
        X, y = load_iris(return_X_y=True)
        model = LogisticRegression(max_iter=1000).fit(X, y)
        _pack(tmp, "iris", model, X, _semantic("iris", "Iris species from flower measurements", "Classification", 3, "Nature"))
        X, y = load_diabetes(return_X_y=True, scaled=False)
        model = Ridge(alpha=1.0).fit(X, y)
        _pack(tmp, "diabetes", model, X, _semantic("diabetes", "Diabetes progression after one year", "Regression", 1, "Health"))
    total = sum(p.stat().st_size for p in HERE.glob("*.zip"))
    print(f"total {total // 1024} KiB")


if __name__ == "__main__":
    main()
