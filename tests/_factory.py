"""Build learnware zips inside tests (no network, no sklearn needed)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MODEL_CODE = '''
import numpy as np


class Model:
    def __init__(self, dim=2, n_classes=2):
        self.input_shape = (dim,)
        self.output_shape = (n_classes,)
        self._n = n_classes

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        s = X.sum(axis=1)
        out = np.zeros((len(X), self._n))
        out[np.arange(len(X)), (s > 0).astype(int) % self._n] = 1.0
        return out
'''


def spec_dict(d: int = 2, K: int = 5, seed: int = 0, gamma: float = 0.1, center: float = 0.0) -> dict[str, Any]:
    """A table RKME in the reference's file format."""
    rng = np.random.default_rng(seed)
    z = rng.normal(loc=center, size=(K, d))
    beta = np.full(K, 1.0 / K)
    return {"z": z.tolist(), "beta": beta.tolist(), "gamma": gamma, "num_points": 50, "type": "RKMETableSpecification"}


def semantic_dict(name: str = "test model", d: int = 2, task: str = "Classification", out: int = 2) -> dict[str, Any]:
    return {
        "Data": {"Type": "Class", "Values": ["Table"]},
        "Task": {"Type": "Class", "Values": [task]},
        "Library": {"Type": "Class", "Values": ["Others"]},
        "Scenario": {"Type": "Tag", "Values": ["Business"]},
        "License": {"Type": "Class", "Values": ["MIT"]},
        "Name": {"Type": "String", "Values": name},
        "Description": {"Type": "String", "Values": f"{name} for tests"},
        "Input": {"Dimension": d, "Description": {}},
        "Output": {"Dimension": out, "Description": {}},
    }


def yaml_text(spec_file: str = "stat.json", d: int = 2, n_classes: int = 2) -> str:
    return (
        "model:\n  class_name: Model\n  module_path: __init__.py\n"
        f"  kwargs: {{dim: {d}, n_classes: {n_classes}}}\n"
        "stat_specifications:\n  - module_path: learnware.specification\n"
        f"    class_name: RKMETableSpecification\n    file_name: {spec_file}\n    kwargs: {{}}\n"
    )


def write_zip(path: Path, files: dict[str, bytes | str]) -> Path:
    """A zip with fixed timestamps: the same files give the same bytes, so the same learnware id
    (with the clock's timestamps, two zips made 2 s apart differ and a duplicate is not one)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16  # what writestr gives a name
            zf.writestr(info, data)
    return path


def learnware_files(
    *, d: int = 2, seed: int = 0, name: str = "test model", semantic: bool = True, center: float = 0.0
) -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {
        "learnware.yaml": yaml_text(d=d),
        "__init__.py": MODEL_CODE,
        "stat.json": json.dumps(spec_dict(d=d, seed=seed, center=center)),
        "requirements.txt": "numpy\n",
    }
    if semantic:
        files["semantic_specification.json"] = json.dumps(semantic_dict(name=name, d=d))
    return files


def learnware_zip(path: Path, **kw: Any) -> Path:
    return write_zip(path, learnware_files(**kw))
