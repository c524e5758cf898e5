"""``lwdock pack``: build a learnware zip from a pickled model and its training data.

The model file is copied, never loaded here: the generated wrapper loads it
inside the learnware's sandbox. The statistical specification is made from
the training data (or taken from ``spec_file``), so the raw data never enters
the zip.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..errors import InputDataError, NotFoundError, UsageError
from . import semantic as sem

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same inputs, same bytes, same id
SPEC_FILE = "rkme.json"


def _yaml_text(model_file: str, input_dim: int, task: str, output_dim: int, output: str) -> str:
    kwargs = {"input_dim": input_dim, "task": task, "output_dim": output_dim, "model_file": model_file, "output": output}
    lines = [
        "# written by lwdock pack",
        "model:",
        "  class_name: Model",
        "  module_path: __init__.py",
        "  kwargs: " + json.dumps(kwargs),
        "stat_specifications:",
        "  - module_path: learnware.specification",
        "    class_name: RKMETableSpecification",
        f"    file_name: {SPEC_FILE}",
        "    kwargs: {}",
        "",
    ]
    return "\n".join(lines)


def default_requirements() -> list[str]:
    try:
        return [f"scikit-learn=={version('scikit-learn')}"]
    except PackageNotFoundError:  # pragma: no cover
        return ["scikit-learn"]


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    zf.writestr(info, data)


def make_spec_json(train_data: Path, *, gamma: float, K: int, seed: int, max_samples: int | None) -> tuple[bytes, int]:
    """Fit a table RKME on the training data; returns (spec JSON bytes, dimension)."""
    import numpy as np

    from ..spec.data import load_data
    from ..spec.rkme_table import RKMETableSpec

    X = load_data(train_data)
    if max_samples is not None and X.shape[0] > max_samples:
        rows = np.random.default_rng(seed).choice(X.shape[0], size=max_samples, replace=False)
        X = X[np.sort(rows)]
    spec = RKMETableSpec(gamma=gamma, K=K, random_state=seed).fit(X)
    buf = io.StringIO()
    json.dump(spec.to_dict(), buf)
    return buf.getvalue().encode("utf-8"), int(X.shape[1])


def pack(
    model_file: str | Path,
    out_zip: str | Path,
    semantic: dict[str, Any],
    *,
    train_data: str | Path | None = None,
    spec_file: str | Path | None = None,
    requirements: list[str] | None = None,
    gamma: float = 0.1,
    K: int = 100,
    seed: int = 0,
    max_samples: int | None = None,
    output: str = "auto",
) -> dict[str, Any]:
    """Write a learnware zip; returns a summary (path, sha256, dimension)."""
    model_file = Path(model_file)
    if not model_file.is_file():
        raise NotFoundError(f"no such model file: {model_file}")
    if output not in ("auto", "labels", "proba"):
        raise UsageError(f"--output must be auto, labels or proba, not {output!r}")
    if spec_file is not None:
        spec_path = Path(spec_file)
        if not spec_path.is_file():
            raise NotFoundError(f"no such spec file: {spec_path}")
        from ..spec.specfile import load_spec

        dim = int(load_spec(spec_path).dim)
        spec_bytes = spec_path.read_bytes()
    elif train_data is not None:
        spec_bytes, dim = make_spec_json(Path(train_data), gamma=gamma, K=K, seed=seed, max_samples=max_samples)
    else:
        raise UsageError("give the training data (--data) or a ready spec (--spec)")

    semantic = dict(semantic)
    semantic.setdefault("Data", {"Type": "Class", "Values": ["Table"]})
    if "Input" not in semantic:
        semantic["Input"] = {"Dimension": dim, "Description": {}}
    semantic = sem.validate(semantic)
    if semantic["Input"]["Dimension"] != dim:
        raise InputDataError(f"the data has {dim} features but the semantic Input.Dimension is {semantic['Input']['Dimension']}")
    task = sem.value(semantic, "Task")
    out_dim = int((semantic.get("Output") or {}).get("Dimension", 1))

    model_name = "model.joblib" if model_file.suffix == ".joblib" else "model.pkl"
    wrapper = resources.files("lwdock.store.templates").joinpath("sklearn_wrapper.py").read_bytes()
    reqs = default_requirements() if requirements is None else list(requirements)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, "learnware.yaml", _yaml_text(model_name, dim, task, out_dim, output).encode())
        _add(zf, "__init__.py", wrapper)
        _add(zf, model_name, model_file.read_bytes())
        _add(zf, SPEC_FILE, spec_bytes)
        _add(zf, "requirements.txt", ("\n".join(reqs) + "\n").encode() if reqs else b"")
        _add(zf, "semantic_specification.json", json.dumps(semantic, indent=2, sort_keys=True).encode())
    tmp.replace(out_zip)
    from .dock import sha256_file

    return {"path": str(out_zip), "id": sha256_file(out_zip), "dim": dim, "task": task, "output_dim": out_dim}
