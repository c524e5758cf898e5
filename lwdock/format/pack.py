"""``lwdock pack``: build a learnware zip from a model and its training data.

The model is copied, never loaded here, and a developer's module is never imported: the
generated wrapper loads the model inside the learnware's sandbox, and the usability checks run
it there (docs/security.md). The kind of model is found from the files alone
(:mod:`lwdock.format.models`): a pickled or joblib scikit-learn model, a TorchScript file, torch
weights with the module defining the network, or the developer's own wrapper module.

The statistical specification is made from the training data (or taken from ``spec_file``), so
the raw data never enters the zip. The data's column names (a CSV header, a ``.npz``
``feature_names`` array, a DataFrame's columns) become the semantic ``Input.Description`` when the
developer gave none, and the spec file's extra key ``feature_names``; a label column is left out
of the spec, and for a classifier its labels become the learnware's classes (``Output.Description``).
See docs/packaging.md.
"""

from __future__ import annotations

import json
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, NotFoundError, UsageError
from ..hetero.stats import STATS_FILE, packed_stats
from ..records import Semantic
from ..spec.data import load_images, load_texts, read_table
from ..spec.registry import SPEC_CLASS, serves
from ..spec.rkme_image import RKMEImageSpec
from ..spec.rkme_table import RKMETableSpec
from ..spec.rkme_text import RKMETextSpec
from ..spec.specfile import load_spec
from . import labels as lab
from . import models
from . import semantic as sem
from .ids import sha256_file
from .requirements import default_requirements

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: same inputs, same bytes, same id
SPEC_FILE = "rkme.json"
RESERVED = ("learnware.yaml", "__init__.py", SPEC_FILE, "requirements.txt", "semantic_specification.json")

DATA_TYPES = ("Table", "Image", "Text")
TEMPLATE = {models.SKLEARN: "sklearn_wrapper.py", models.TORCHSCRIPT: "torch_wrapper.py",
            models.TORCH_STATE: "torch_wrapper.py"}
DEFAULT_K = {"Table": 100, "Image": 50, "Text": 100}
OUTPUTS = ("auto", "labels", "proba")


@dataclass(frozen=True)
class PackOptions:
    """How :func:`pack` builds the spec and the wrapper. Every field has a working default.

    ``data_type`` (default: the semantic spec's Data, else Table) picks the spec and wrapper:
    Table (numeric rows, table RKME), Image (N x C x H x W .npy/.npz, image RKME) or Text (a text
    file, text RKME with ``embedder``; the model's predict takes a list of strings).
    ``requirements`` default to pins of what the model needs here (scikit-learn, torch, or what
    a wrapper module imports). ``output`` (classifiers): auto (probabilities if the model has
    them), labels or proba.

    ``label_column`` (a name or an index) is left out of the spec; its labels are a classifier's
    classes unless ``classes`` (in the model's output order) or a complete semantic
    ``Output.Description`` says otherwise. ``module`` is the developer's wrapper module (or, with
    torch weights, the module defining the network, ``class_name`` naming its class when it has
    several); ``include`` are files and folders it needs; ``model_kwargs`` are passed to the
    wrapper class (or to the network class).
    """
    data_type: str | None = None
    requirements: tuple[str, ...] | None = None
    gamma: float | None = None  # None: scale-free automatic fit (experts may fix an RBF gamma)
    K: int | None = None
    seed: int = 0
    max_samples: int | None = None
    output: str = "auto"
    embedder: str = "all-MiniLM-L6-v2"
    text_field: str | None = None
    label_column: str | int | None = None
    classes: tuple[str, ...] | None = None
    module: str | Path | None = None
    include: tuple[str | Path, ...] = ()
    class_name: str | None = None
    model_kwargs: dict[str, Any] | None = None


@dataclass(frozen=True)
class PackResult:
    """What :func:`pack` wrote: the zip's path and id (its sha256), and what the learnware takes and gives."""
    path: str
    id: str
    dim: int
    task: str
    output_dim: int
    data_type: str
    model_kind: str = models.SKLEARN
    columns: list[str] | None = None
    classes: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Spec:
    """A spec ready for the zip: its JSON, its dimension, and what the training data said."""
    data: bytes
    dim: int
    input_shape: list[int] | None = None  # None: text
    columns: list[str] | None = None
    labels: Any = None  # the label column's values, when one was given
    dtype: str = "float64"


@dataclass
class _Members:
    """The model part of the zip: files, and the yaml's model section."""
    files: dict[str, bytes] = field(default_factory=dict)
    class_name: str = "Model"
    module_path: str = "__init__.py"
    kwargs: dict[str, Any] = field(default_factory=dict)


def _subsample(n: int, max_samples: int | None, seed: int) -> np.ndarray | None:
    """Sorted row indices of a seeded subsample, or None to keep every row."""
    if max_samples is None or n <= max_samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def make_spec_json(train_data: Any, *, gamma: float | None, K: int, seed: int, max_samples: int | None,
                   label_column: str | int | None = None) -> _Spec:
    """Fit a table RKME on the training data (a file, a DataFrame or an array), without its label column."""
    table = read_table(train_data, label_column, what="the training data")
    X = table.X
    rows = _subsample(X.shape[0], max_samples, seed)
    if rows is not None:
        X = X[rows]
    spec = RKMETableSpec(gamma=gamma, K=K, random_state=seed).fit(X)
    doc = spec.to_dict()
    if table.columns:
        doc["feature_names"] = list(table.columns)  # an extra key: reference readers ignore it
    dim = int(X.shape[1])
    return _Spec(json.dumps(doc).encode("utf-8"), dim, [dim], list(table.columns) if table.columns else None,
                 table.y, table.dtype)


def make_image_spec_json(train_data: Path, *, K: int, seed: int, max_samples: int | None,
                         label_column: str | None = None) -> _Spec:
    """Fit an image RKME on N x C x H x W training images (a ``.npz`` may hold their labels too)."""
    X = load_images(train_data)
    params: dict[str, Any] = {"K": K, "random_state": seed}
    if max_samples is not None:
        params["sample_size"] = int(max_samples)
    spec = RKMEImageSpec(**params).fit(X)
    shape = [int(s) for s in X.shape[1:]]
    labels = read_table(train_data, label_column).y if label_column is not None else None
    return _Spec(json.dumps(spec.to_dict()).encode("utf-8"), int(np.prod(shape)), shape, None, labels, str(X.dtype))


def make_text_spec_json(train_data: Path, *, K: int, seed: int, max_samples: int | None, embedder: str,
                        text_field: str | None, label_column: str | None = None) -> _Spec:
    """Fit a text RKME on a text file (.txt lines, .jsonl/.csv with ``text_field``).

    Text specs keep the reference's gamma 0.1 (embeddings are unit vectors), not the dock's table gamma.
    """
    texts = load_texts(train_data, field=text_field, column=text_field)
    rows = _subsample(len(texts), max_samples, seed)
    if rows is not None:
        texts = [texts[i] for i in rows]
    spec = RKMETextSpec(K=K, random_state=seed, embedder=embedder).fit(texts)
    labels = None
    if label_column is not None:
        labels = load_texts(train_data, field=str(label_column), column=str(label_column))
    return _Spec(json.dumps(spec.to_dict()).encode("utf-8"), int(spec.dim), None, None, labels, "str")


def pack(
    model_file: str | Path | None,
    out_zip: str | Path,
    semantic: dict[str, Any],
    *,
    train_data: Any = None,
    spec_file: str | Path | None = None,
    options: PackOptions | None = None,
) -> PackResult:
    """Write a learnware zip for ``model_file`` (and/or ``options.module``) with a spec fitted on
    ``train_data`` (a file, a DataFrame or an array) or the ready ``spec_file``, and the
    ``semantic`` spec; see :class:`PackOptions` for the rest."""
    opts = options or PackOptions()
    if opts.output not in OUTPUTS:
        raise UsageError(f"--output must be auto, labels or proba, not {opts.output!r}")
    model_path = Path(model_file) if model_file is not None else None
    module = Path(opts.module) if opts.module is not None else None
    kind = models.detect(model_path, module, opts.class_name)
    data_type = _data_type(semantic, opts.data_type)
    if kind.kind in (models.TORCHSCRIPT, models.TORCH_STATE) and data_type == "Text":
        raise UsageError("a torch network takes tensors, not texts",
                         hint="wrap it in your own module (--module) that tokenizes the texts")
    if spec_file is not None:
        spec = _spec_from_file(Path(spec_file), data_type)
    elif train_data is not None:
        spec = _spec_from_data(train_data, data_type, opts)
    else:
        raise UsageError("give the training data (--data) or a ready spec (--spec)")
    semantic = _named(semantic, Path(out_zip))
    classes = _classes(semantic, opts.classes, spec.labels)
    final = _final_semantic(semantic, data_type, spec, classes)
    out_dim = final.output_dim or 1
    members = _model_members(kind, model_path, module, opts, final, spec, classes)
    reqs = default_requirements(kind.kind, module, opts.include) if opts.requirements is None else list(opts.requirements)
    schema = {"dimension": spec.dim, "shape": spec.input_shape, "columns": spec.columns, "dtype": spec.dtype}
    out_zip = Path(out_zip)
    files = {
        "learnware.yaml": _yaml_text(members, data_type, schema).encode(),
        **members.files,
        SPEC_FILE: spec.data,
        "requirements.txt": ("\n".join(reqs) + "\n").encode() if reqs else b"",
        "semantic_specification.json": json.dumps(final.to_dict(), indent=2, sort_keys=True).encode(),
    }
    if data_type == "Table" and train_data is not None:  # named columns: stats for heterogeneous search
        table = read_table(train_data, opts.label_column, what="the training data")
        hetero = packed_stats(table, final, K=opts.K or DEFAULT_K["Table"], seed=opts.seed,
                              max_samples=opts.max_samples)
        if hetero is not None:
            files[STATS_FILE] = hetero
    write_zip(out_zip, files)
    return PackResult(path=str(out_zip), id=sha256_file(out_zip), dim=spec.dim, task=final.task or "",
                      output_dim=out_dim, data_type=data_type, model_kind=kind.kind, columns=spec.columns,
                      classes=classes)


def _named(semantic: dict[str, Any], out_zip: Path) -> dict[str, Any]:
    """The semantic spec with the defaults of the flags (Library, Scenario, License: Others), a Name
    (default: the zip's name) and a Description (default: the Name)."""
    raw = sem.normalize(dict(semantic))
    return sem.from_flags(base=raw, name=None if "Name" in raw else out_zip.stem)


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
    names = json.loads(path.read_text(encoding="utf-8")).get("feature_names") if data_type == "Table" else None
    names = [str(n) for n in names] if isinstance(names, list) and len(names) == spec.dim else None
    dim = int(spec.dim)
    return _Spec(path.read_bytes(), dim, [dim] if data_type == "Table" else None, names,
                 dtype="float64" if data_type == "Table" else "str")


def _spec_from_data(train_data: Any, data_type: str, opts: PackOptions) -> _Spec:
    k = DEFAULT_K[data_type] if opts.K is None else int(opts.K)
    if data_type == "Image":
        return make_image_spec_json(Path(train_data), K=k, seed=opts.seed, max_samples=opts.max_samples,
                                    label_column=opts.label_column)
    if data_type == "Text":
        return make_text_spec_json(Path(train_data), K=k, seed=opts.seed, max_samples=opts.max_samples,
                                   embedder=opts.embedder, text_field=opts.text_field, label_column=opts.label_column)
    return make_spec_json(train_data, gamma=opts.gamma, K=k, seed=opts.seed, max_samples=opts.max_samples,
                          label_column=opts.label_column)


def _classes(semantic: dict[str, Any], given: tuple[str, ...] | None, labels: Any) -> list[str] | None:
    """A classifier's classes, in order: ``given`` (--classes), else a complete Output.Description,
    else the training labels sorted (as scikit-learn orders ``classes_``)."""
    raw = sem.normalize(dict(semantic))
    task = Semantic.from_dict(raw).task
    if (task or "").lower() != "classification":
        if given:
            raise UsageError(f"--classes is for classifiers; the task is {task or 'not set'}")
        return None
    from_data = lab.sort_labels(np.asarray(labels).reshape(-1)) if labels is not None else None
    chosen = [lab.canonical(c) for c in given] if given else lab.declared_classes(Semantic.from_dict(raw))
    if chosen is not None and len(set(chosen)) != len(chosen):
        raise UsageError(f"the classes repeat a label: {', '.join(chosen)}")
    if chosen is None:
        chosen = from_data
    if chosen is not None and from_data is not None:
        unknown = [c for c in from_data if c not in chosen]
        if unknown:
            raise InputDataError(f"the training labels include {', '.join(unknown[:10])}, which are not among the "
                                 f"classes ({', '.join(chosen[:10])})")
    declared_dim = Semantic.from_dict(raw).output_dim
    if chosen is not None and declared_dim is not None and declared_dim != len(chosen):
        raise UsageError(f"the learnware has {len(chosen)} classes ({', '.join(chosen[:10])}) but Output.Dimension "
                         f"is {declared_dim}", hint="name every class, in order, with --classes")
    return chosen


def _final_semantic(semantic: dict[str, Any], data_type: str, spec: _Spec, classes: list[str] | None) -> Semantic:
    """The validated semantic spec of the package: Data set, Input (with the column names) and Output filled in."""
    raw = sem.normalize(dict(semantic))
    raw["Data"] = {"Type": "Class", "Values": [data_type]}
    names = {str(i): n for i, n in enumerate(spec.columns)} if spec.columns else {}
    if "Input" not in raw and data_type != "Text":
        raw["Input"] = {"Dimension": spec.dim, "Description": names}
    elif isinstance(raw.get("Input"), dict) and names and not raw["Input"].get("Description"):
        raw["Input"] = {**raw["Input"], "Description": names}
    if classes is not None:
        raw["Output"] = {**(raw.get("Output") or {}), "Dimension": len(classes),
                         "Description": {str(i): c for i, c in enumerate(classes)}}
    elif spec.labels is not None and "Output" not in raw:
        raw["Output"] = {"Dimension": 1, "Description": {}}  # a regression target
    final = Semantic.from_dict(sem.validate(raw))
    if data_type == "Table" and final.input_dim != spec.dim:
        raise InputDataError(f"the data has {spec.dim} features but the semantic Input.Dimension is {final.input_dim}")
    return final


def _model_members(kind: models.ModelKind, model_path: Path | None, module: Path | None, opts: PackOptions,
                   final: Semantic, spec: _Spec, classes: list[str] | None) -> _Members:
    """The files and the yaml model section of each kind of model."""
    task, out_dim = final.task or "", final.output_dim or 1
    if kind.kind == models.MODULE:
        members = _Members(class_name=kind.class_name or "Model", module_path=module.name,  # type: ignore[union-attr]
                           kwargs=dict(opts.model_kwargs or {}))
        members.files[module.name] = module.read_bytes()  # type: ignore[union-attr]
        if model_path is not None:
            members.files[model_path.name] = model_path.read_bytes()
        _include(members.files, opts.include)
        return members
    template = resources.files("lwdock.format.templates").joinpath(TEMPLATE[kind.kind]).read_bytes()
    members = _Members(files={"__init__.py": template})
    if kind.kind == models.SKLEARN:
        name = "model.joblib" if model_path.suffix == ".joblib" else "model.pkl"  # type: ignore[union-attr]
        members.kwargs = {"task": task, "output_dim": out_dim, "model_file": name, "output": opts.output}
        if spec.input_shape is not None:
            members.kwargs["input_shape"] = spec.input_shape
        if classes is not None:
            members.kwargs["classes"] = classes
    else:
        name = "model.pt"
        members.kwargs = {"input_shape": spec.input_shape, "task": task, "output_dim": out_dim, "model_file": name,
                          "output": opts.output}
        if kind.kind == models.TORCH_STATE:
            members.kwargs.update(net_module=module.name, net_class=kind.class_name,  # type: ignore[union-attr]
                                  net_kwargs=dict(opts.model_kwargs or {}))
            members.files[module.name] = module.read_bytes()  # type: ignore[union-attr]
            _include(members.files, opts.include)
    members.files[name] = model_path.read_bytes()  # type: ignore[union-attr]
    return members


def _include(files: dict[str, bytes], include: tuple[str | Path, ...]) -> None:
    """Add files, and folders with everything under them, by their own names."""
    for item in include:
        path = Path(item)
        if path.is_dir():
            found = [(p, f"{path.name}/{p.relative_to(path).as_posix()}") for p in sorted(path.rglob("*"))
                     if p.is_file() and "__pycache__" not in p.parts]
        elif path.is_file():
            found = [(path, path.name)]
        else:
            raise NotFoundError(f"no such file to include: {path}")
        for p, name in found:
            if p.is_symlink():
                raise UsageError(f"{p} is a symbolic link; include the file it points to")
            if name in RESERVED or name in files:
                raise UsageError(f"{name} would be in the learnware twice", hint="rename the file you include")
            files[name] = p.read_bytes()


def _yaml_text(members: _Members, data_type: str, schema: dict[str, Any]) -> str:
    lines = [
        "# written by lwdock pack",
        "model:",
        f"  class_name: {members.class_name}",
        f"  module_path: {json.dumps(members.module_path)}",
        "  kwargs: " + json.dumps(members.kwargs),
        "stat_specifications:",
        "  - module_path: learnware.specification",
        f"    class_name: {SPEC_CLASS[data_type]}",
        f"    file_name: {SPEC_FILE}",
        "    kwargs: {}",
        "input_schema: " + json.dumps(schema),
        "",
    ]
    return "\n".join(lines)


def write_zip(out_zip: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` in order, with fixed timestamps and modes, through a temp file."""
    if out_zip.is_dir():
        raise UsageError(f"{out_zip} is a directory; give the zip file to write (-o FILE.zip)")
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
