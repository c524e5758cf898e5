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
from ..spec.registry import SPEC_CLASS, serves
from . import semantic as sem

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same inputs, same bytes, same id
SPEC_FILE = "rkme.json"


DATA_TYPES = ("Table", "Image", "Text")
WRAPPER = {"Table": "sklearn_wrapper.py", "Image": "image_wrapper.py", "Text": "text_wrapper.py"}
DEFAULT_K = {"Table": 100, "Image": 50, "Text": 100}


def _yaml_text(model_file: str, input_dim: int, task: str, output_dim: int, output: str,
               data_type: str = "Table", input_shape: list[int] | None = None) -> str:
    kwargs: dict[str, Any] = {"input_dim": input_dim, "task": task, "output_dim": output_dim,
                              "model_file": model_file, "output": output}
    if data_type == "Image":
        kwargs = {"input_shape": input_shape, "task": task, "output_dim": output_dim, "model_file": model_file,
                  "output": output}
    elif data_type == "Text":
        kwargs = {"task": task, "output_dim": output_dim, "model_file": model_file, "output": output}
    lines = [
        "# written by lwdock pack",
        "model:",
        "  class_name: Model",
        "  module_path: __init__.py",
        "  kwargs: " + json.dumps(kwargs),
        "stat_specifications:",
        "  - module_path: learnware.specification",
        f"    class_name: {SPEC_CLASS[data_type]}",
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


def make_image_spec_json(train_data: Path, *, K: int, seed: int, max_samples: int | None) -> tuple[bytes, list[int]]:
    """Fit an image RKME on N x C x H x W training images; returns (spec JSON bytes, [C, H, W])."""
    from ..spec.data import load_images
    from ..spec.rkme_image import RKMEImageSpec

    X = load_images(train_data)
    params: dict[str, Any] = {"K": K, "random_state": seed}
    if max_samples is not None:
        params["sample_size"] = int(max_samples)
    spec = RKMEImageSpec(**params).fit(X)
    return json.dumps(spec.to_dict()).encode("utf-8"), [int(s) for s in X.shape[1:]]


def make_text_spec_json(train_data: Path, *, K: int, seed: int, max_samples: int | None, embedder: str,
                        text_field: str | None) -> tuple[bytes, int]:
    """Fit a text RKME on a text file (.txt lines, .jsonl/.csv with ``text_field``); returns (JSON bytes, dim).

    Text specs keep the reference's gamma 0.1 (embeddings are unit vectors), not the dock's table gamma.
    """
    import numpy as np

    from ..spec.data import load_texts
    from ..spec.rkme_text import RKMETextSpec

    texts = load_texts(train_data, field=text_field, column=text_field)
    if max_samples is not None and len(texts) > max_samples:
        rows = np.sort(np.random.default_rng(seed).choice(len(texts), size=max_samples, replace=False))
        texts = [texts[i] for i in rows]
    spec = RKMETextSpec(K=K, random_state=seed, embedder=embedder).fit(texts)
    return json.dumps(spec.to_dict()).encode("utf-8"), int(spec.dim)


def pack(
    model_file: str | Path,
    out_zip: str | Path,
    semantic: dict[str, Any],
    *,
    train_data: str | Path | None = None,
    spec_file: str | Path | None = None,
    requirements: list[str] | None = None,
    gamma: float = 0.1,
    K: int | None = None,
    seed: int = 0,
    max_samples: int | None = None,
    output: str = "auto",
    data_type: str | None = None,
    embedder: str = "all-MiniLM-L6-v2",
    text_field: str | None = None,
) -> dict[str, Any]:
    """Write a learnware zip; returns a summary (path, sha256, dimension).

    ``data_type`` (default: the semantic spec's Data, else Table) picks the spec and wrapper:
    Table (numeric rows, table RKME), Image (N x C x H x W .npy/.npz, image RKME, the wrapper
    flattens images for the model) or Text (a text file, text RKME with ``embedder``, the
    wrapper's predict takes a list of strings).
    """
    model_file = Path(model_file)
    if not model_file.is_file():
        raise NotFoundError(f"no such model file: {model_file}")
    if output not in ("auto", "labels", "proba"):
        raise UsageError(f"--output must be auto, labels or proba, not {output!r}")
    semantic = dict(semantic)
    if data_type is None:
        values = (semantic.get("Data") or {}).get("Values") if isinstance(semantic.get("Data"), dict) else None
        data_type = values[0] if isinstance(values, list) and values else "Table"
    if data_type not in DATA_TYPES:
        raise UsageError(f"--data-type must be Table, Image or Text, not {data_type!r}")
    k = DEFAULT_K[data_type] if K is None else int(K)
    input_shape: list[int] | None = None
    if spec_file is not None:
        spec_path = Path(spec_file)
        if not spec_path.is_file():
            raise NotFoundError(f"no such spec file: {spec_path}")
        from ..spec.specfile import load_spec

        spec_obj = load_spec(spec_path)
        if not serves(spec_obj.type, data_type):
            raise UsageError(f"the spec is a {spec_obj.type} but the data type is {data_type}")
        if data_type == "Image":
            raise UsageError("an image learnware needs its training images (--data) for the model's input shape",
                             hint="pass --data IMAGES.npy; the spec is built from them")
        dim = int(spec_obj.dim)
        spec_bytes = spec_path.read_bytes()
    elif train_data is not None:
        if data_type == "Image":
            spec_bytes, input_shape = make_image_spec_json(Path(train_data), K=k, seed=seed, max_samples=max_samples)
            dim = int(input_shape[0] * input_shape[1] * input_shape[2])
        elif data_type == "Text":
            spec_bytes, dim = make_text_spec_json(Path(train_data), K=k, seed=seed, max_samples=max_samples,
                                                  embedder=embedder, text_field=text_field)
        else:
            spec_bytes, dim = make_spec_json(Path(train_data), gamma=gamma, K=k, seed=seed, max_samples=max_samples)
    else:
        raise UsageError("give the training data (--data) or a ready spec (--spec)")

    semantic["Data"] = {"Type": "Class", "Values": [data_type]}
    if "Input" not in semantic and data_type != "Text":
        semantic["Input"] = {"Dimension": dim, "Description": {}}
    semantic = sem.validate(semantic)
    if data_type == "Table" and semantic["Input"]["Dimension"] != dim:
        raise InputDataError(f"the data has {dim} features but the semantic Input.Dimension is {semantic['Input']['Dimension']}")
    task = sem.value(semantic, "Task")
    out_dim = int((semantic.get("Output") or {}).get("Dimension", 1))

    model_name = "model.joblib" if model_file.suffix == ".joblib" else "model.pkl"
    wrapper = resources.files("lwdock.store.templates").joinpath(WRAPPER[data_type]).read_bytes()
    reqs = default_requirements() if requirements is None else list(requirements)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, "learnware.yaml", _yaml_text(model_name, dim, task, out_dim, output, data_type, input_shape).encode())
        _add(zf, "__init__.py", wrapper)
        _add(zf, model_name, model_file.read_bytes())
        _add(zf, SPEC_FILE, spec_bytes)
        _add(zf, "requirements.txt", ("\n".join(reqs) + "\n").encode() if reqs else b"")
        _add(zf, "semantic_specification.json", json.dumps(semantic, indent=2, sort_keys=True).encode())
    tmp.replace(out_zip)
    from .dock import sha256_file

    return {"path": str(out_zip), "id": sha256_file(out_zip), "dim": dim, "task": task, "output_dim": out_dim,
            "data_type": data_type}
