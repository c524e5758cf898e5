"""``lwdock pack``: build a learnware zip from a pickled model and its training data.

The model file is copied, never loaded here: the generated wrapper loads it
inside the learnware's sandbox. The statistical specification is made from
the training data (or taken from ``spec_file``), so the raw data never enters
the zip.
"""

from __future__ import annotations

import json
import stat
import zipfile
from dataclasses import asdict, dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, NotFoundError, UsageError
from ..hetero.stats import STATS_FILE, packed_stats
from ..records import Semantic
from ..spec.data import load_data, load_images, load_texts
from ..spec.rkme_image import RKMEImageSpec
from ..spec.rkme_table import RKMETableSpec
from ..spec.registry import SPEC_CLASS, serves
from ..spec.rkme_text import RKMETextSpec
from ..spec.specfile import load_spec
from . import semantic as sem
from .ids import sha256_file

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same inputs, same bytes, same id
SPEC_FILE = "rkme.json"

DATA_TYPES = ("Table", "Image", "Text")
WRAPPER = {"Table": "sklearn_wrapper.py", "Image": "image_wrapper.py", "Text": "text_wrapper.py"}
DEFAULT_K = {"Table": 100, "Image": 50, "Text": 100}
OUTPUTS = ("auto", "labels", "proba")


@dataclass(frozen=True)
class PackOptions:
    """How :func:`pack` builds the spec and the wrapper. Every field has a working default.

    ``data_type`` (default: the semantic spec's Data, else Table) picks the spec and wrapper:
    Table (numeric rows, table RKME), Image (N x C x H x W .npy/.npz, image RKME, the wrapper
    flattens images for the model) or Text (a text file, text RKME with ``embedder``, the
    wrapper's predict takes a list of strings). ``requirements`` default to this scikit-learn.
    ``output`` (classifiers): auto (probabilities if the model has them), labels or proba.
    """
    data_type: str | None = None
    requirements: tuple[str, ...] | None = None
    gamma: float = 0.1
    K: int | None = None
    seed: int = 0
    max_samples: int | None = None
    output: str = "auto"
    embedder: str = "all-MiniLM-L6-v2"
    text_field: str | None = None


@dataclass(frozen=True)
class PackResult:
    """What :func:`pack` wrote: the zip's path and id (its sha256), and what the learnware takes."""
    path: str
    id: str
    dim: int
    task: str
    output_dim: int
    data_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Spec:
    """A spec ready for the zip: its JSON, its dimension, and the image shape (images only)."""
    data: bytes
    dim: int
    input_shape: list[int] | None = None


def default_requirements() -> list[str]:
    try:
        return [f"scikit-learn=={version('scikit-learn')}"]
    except PackageNotFoundError:  # pragma: no cover
        return ["scikit-learn"]


def _subsample(n: int, max_samples: int | None, seed: int) -> np.ndarray | None:
    """Sorted row indices of a seeded subsample, or None to keep every row."""
    if max_samples is None or n <= max_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def make_spec_json(train_data: Path, *, gamma: float, K: int, seed: int, max_samples: int | None) -> tuple[bytes, int]:
    """Fit a table RKME on the training data; returns (spec JSON bytes, dimension)."""
    X = load_data(train_data)
    rows = _subsample(X.shape[0], max_samples, seed)
    if rows is not None:
        X = X[rows]
    spec = RKMETableSpec(gamma=gamma, K=K, random_state=seed).fit(X)
    return json.dumps(spec.to_dict()).encode("utf-8"), int(X.shape[1])


def make_image_spec_json(train_data: Path, *, K: int, seed: int, max_samples: int | None) -> tuple[bytes, list[int]]:
    """Fit an image RKME on N x C x H x W training images; returns (spec JSON bytes, [C, H, W])."""
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
    texts = load_texts(train_data, field=text_field, column=text_field)
    rows = _subsample(len(texts), max_samples, seed)
    if rows is not None:
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
    options: PackOptions | None = None,
) -> PackResult:
    """Write a learnware zip for ``model_file`` with a spec fitted on ``train_data`` (or the
    ready ``spec_file``) and the ``semantic`` spec; see :class:`PackOptions` for the rest."""
    opts = options or PackOptions()
    model_file = Path(model_file)
    if not model_file.is_file():
        raise NotFoundError(f"no such model file: {model_file}")
    if opts.output not in OUTPUTS:
        raise UsageError(f"--output must be auto, labels or proba, not {opts.output!r}")
    data_type = _data_type(semantic, opts.data_type)
    if spec_file is not None:
        spec = _spec_from_file(Path(spec_file), data_type)
    elif train_data is not None:
        spec = _spec_from_data(Path(train_data), data_type, opts)
    else:
        raise UsageError("give the training data (--data) or a ready spec (--spec)")
    final = _final_semantic(semantic, data_type, spec.dim)
    out_dim = final.output_dim or 1
    model_name = "model.joblib" if model_file.suffix == ".joblib" else "model.pkl"
    reqs = default_requirements() if opts.requirements is None else list(opts.requirements)
    yaml_text = _yaml_text(model_name, spec, final.task or "", out_dim, opts.output, data_type)
    out_zip = Path(out_zip)
    members = {
        "learnware.yaml": yaml_text.encode(),
        "__init__.py": resources.files("lwdock.format.templates").joinpath(WRAPPER[data_type]).read_bytes(),
        model_name: model_file.read_bytes(),
        SPEC_FILE: spec.data,
        "requirements.txt": ("\n".join(reqs) + "\n").encode() if reqs else b"",
        "semantic_specification.json": json.dumps(final.to_dict(), indent=2, sort_keys=True).encode(),
    }
    if data_type == "Table" and train_data is not None:  # named columns: stats for heterogeneous search
        hetero = packed_stats(train_data, final, K=opts.K or DEFAULT_K["Table"], seed=opts.seed,
                              max_samples=opts.max_samples)
        if hetero is not None:
            members[STATS_FILE] = hetero
    _write_zip(out_zip, members)
    return PackResult(path=str(out_zip), id=sha256_file(out_zip), dim=spec.dim, task=final.task or "",
                      output_dim=out_dim, data_type=data_type)


def _data_type(semantic: dict[str, Any], given: str | None) -> str:
    data_type = given if given is not None else (Semantic.from_dict(sem.normalize(dict(semantic))).data_type or "Table")
    if data_type not in DATA_TYPES:
        raise UsageError(f"--data-type must be Table, Image or Text, not {data_type!r}")
    return data_type


def _spec_from_file(path: Path, data_type: str) -> _Spec:
    if not path.is_file():
        raise NotFoundError(f"no such spec file: {path}")
    spec = load_spec(path)
    if not serves(spec.type, data_type):
        raise UsageError(f"the spec is a {spec.type} but the data type is {data_type}")
    if data_type == "Image":
        raise UsageError("an image learnware needs its training images (--data) for the model's input shape",
                         hint="pass --data IMAGES.npy; the spec is built from them")
    return _Spec(path.read_bytes(), int(spec.dim))


def _spec_from_data(path: Path, data_type: str, opts: PackOptions) -> _Spec:
    k = DEFAULT_K[data_type] if opts.K is None else int(opts.K)
    if data_type == "Image":
        data, shape = make_image_spec_json(path, K=k, seed=opts.seed, max_samples=opts.max_samples)
        return _Spec(data, int(np.prod(shape)), shape)
    if data_type == "Text":
        data, dim = make_text_spec_json(path, K=k, seed=opts.seed, max_samples=opts.max_samples,
                                        embedder=opts.embedder, text_field=opts.text_field)
        return _Spec(data, dim)
    data, dim = make_spec_json(path, gamma=opts.gamma, K=k, seed=opts.seed, max_samples=opts.max_samples)
    return _Spec(data, dim)


def _final_semantic(semantic: dict[str, Any], data_type: str, dim: int) -> Semantic:
    """The validated semantic spec of the package: Data set to ``data_type``, Input filled in."""
    raw = sem.normalize(dict(semantic))
    raw["Data"] = {"Type": "Class", "Values": [data_type]}
    if "Input" not in raw and data_type != "Text":
        raw["Input"] = {"Dimension": dim, "Description": {}}
    final = Semantic.from_dict(sem.validate(raw))
    if data_type == "Table" and final.input_dim != dim:
        raise InputDataError(f"the data has {dim} features but the semantic Input.Dimension is {final.input_dim}")
    return final


def _yaml_text(model_file: str, spec: _Spec, task: str, output_dim: int, output: str, data_type: str) -> str:
    kwargs: dict[str, Any] = {"input_dim": spec.dim, "task": task, "output_dim": output_dim,
                              "model_file": model_file, "output": output}
    if data_type == "Image":
        kwargs = {"input_shape": spec.input_shape, "task": task, "output_dim": output_dim, "model_file": model_file,
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


def _write_zip(out_zip: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` in order, with fixed timestamps and modes, through a temp file."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, data)
        tmp.replace(out_zip)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
