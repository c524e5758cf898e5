"""Specification files (JSON) and the codec of each specification type.

A table RKME file keeps the reference's keys, so reference tools read it::

    {"z": [[...], ...], "beta": [...], "gamma": 0.0004, "num_points": n, "type": "RKMETableSpecification",
     "schema_version": 1, "dtype": "float64", "params": {...},
     "fit": {"units": "standardised", "gamma": 0.0104, "scale": [...]}, "checksum": "sha256:..."}

``gamma`` is the spec's own raw-unit RBF gamma (what a reference tool compares with; for an
automatic fit, the median heuristic on the raw rows). ``fit`` is provenance only: how the points
were fitted (``units``: ``standardised`` columns with ``scale``, or ``raw``) and with which gamma
in those units. lwdock's search reads neither: the dock picks its kernel per feature space.

Floats are written with Python's shortest round-trip repr, so a save/load round
trip gives identical numbers. The checksum covers the numeric content (the five
reference keys); a reference-written file has neither ``schema_version`` nor
``checksum`` and is accepted as is.

Each spec class names its :class:`Codec` (``TABLE``, ``IMAGE``, ``TEXT`` below);
:func:`spec_from_dict` picks the class from the file's ``type`` through
:mod:`lwdock.spec.registry`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._atomic import write_atomic
from ..errors import SpecFileError, no_file
from . import registry
from .embedders import REFERENCE_EMBEDDER

SCHEMA_VERSION = 1
CORE_KEYS = ("z", "beta", "gamma", "num_points", "type")
IMAGE_CORE_KEYS = ("RKME_IMAGE_VERSION", "z", "beta", "n_models", "model_config", "type")
TEXT_CORE_KEYS = (*CORE_KEYS, "language", "embedder", "embedding_dim")


class Codec(NamedTuple):
    """How one specification type is written to and read from its JSON form."""

    to_dict: Callable[[Any], dict[str, Any]]
    from_dict: Callable[..., Any]  # (data, cls, source) -> fitted spec


def checksum(data: dict[str, Any], keys: tuple[str, ...] = CORE_KEYS) -> str:
    if "fit" in data:  # provenance is covered too when present (files without it hash as before)
        keys = (*keys, "fit")
    core = {k: data.get(k) for k in keys}
    blob = json.dumps(core, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _file_params(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Hyperparameters recorded in a file (the thread count is the reader's business)."""
    return {k: v for k, v in spec.get_params(deep=False).items() if k != "n_threads"}


def _known_params(cls, params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The recorded hyperparameters ``cls`` accepts (files from other versions may carry others)."""
    known = set(cls._get_param_names())
    return {k: v for k, v in params.items() if k in known} if isinstance(params, dict) else {}


def table_to_dict(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    spec._check_fitted()
    data: dict[str, Any] = {
        "z": spec.z_.tolist(),
        "beta": spec.beta_.tolist(),
        "gamma": spec.kernel_gamma(),
        "num_points": int(spec.num_points_),
        "type": spec.type,
        "schema_version": SCHEMA_VERSION,
        "dtype": "float64",
        "params": _file_params(spec),
    }
    fit = fit_record(spec)
    if fit is not None:
        data["fit"] = fit
    data["checksum"] = checksum(data)
    return data


def fit_record(spec) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    """How a table spec was fitted (provenance), or None when unknown (a reference file)."""
    g = getattr(spec, "fit_gamma_", None)
    if g is None:
        return None
    scale = getattr(spec, "fit_scale_", None)
    out: dict[str, Any] = {"units": "raw" if scale is None else "standardised", "gamma": float(g)}
    if scale is not None:
        out["scale"] = np.asarray(scale, dtype=np.float64).tolist()
    return out


def _read_fit(data: dict[str, Any], dim: int, source: str) -> tuple[float | None, np.ndarray | None]:
    fit = data.get("fit")
    if fit is None:
        return None, None
    bad = _fail("fit must be {units, gamma[, scale]} with a positive gamma and one positive scale per column", source)
    if not isinstance(fit, dict) or fit.get("units") not in ("raw", "standardised"):
        raise bad
    g = fit.get("gamma")
    if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g) or g <= 0:
        raise bad
    if fit["units"] == "raw":
        return float(g), None
    try:
        scale = np.array(fit.get("scale"), dtype=np.float64)
    except (TypeError, ValueError):
        raise bad from None
    if scale.shape != (dim,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise bad
    return float(g), scale


def _fail(msg: str, source: str, rebuild: str = "lwdock spec table DATA -o SPEC") -> SpecFileError:
    return SpecFileError(f"{source}: {msg}", hint=f"rebuild it with `{rebuild}`")


def _check_version(data: dict[str, Any], source: str) -> None:
    version = data.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION or version < 1):
        raise _fail(f"schema_version {version!r} is not supported (this lwdock reads up to {SCHEMA_VERSION})", source)


def _read_points(data: dict[str, Any], source: str, dtype: Any, fail: Callable[[str, str], SpecFileError]
                 ) -> tuple[np.ndarray, np.ndarray]:
    try:
        return np.array(data["z"], dtype=dtype), np.array(data["beta"], dtype=np.float64)
    except (TypeError, ValueError):
        raise fail("z and beta must be numeric arrays", source) from None


def _check_weights(z: np.ndarray, beta: np.ndarray, source: str, fail: Callable[[str, str], SpecFileError],
                   rows: str) -> None:
    if beta.ndim != 1 or beta.shape[0] != z.shape[0]:
        raise fail(f"beta has shape {beta.shape} but z has {z.shape[0]} {rows}", source)
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta))):
        raise fail("z or beta contains NaN or Inf", source)
    total = float(np.sum(beta))
    if not total > 0:  # all zero or negative: every distance would be meaningless (a score of 0 for all)
        raise fail(f"the weights beta must have a positive sum (they sum to {total:.6g}), "
                   "as a fitted specification's weights do", source)


def _check_gamma(gamma: Any, z: np.ndarray, source: str) -> None:
    """A positive gamma whose kernel ``exp(-gamma |z_i - z_j|^2)`` can be computed without overflow."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not math.isfinite(gamma) or gamma <= 0:
        raise _fail(f"gamma must be a positive number, got {gamma!r}", source)
    with np.errstate(over="ignore", invalid="ignore"):  # the bounds themselves may overflow: that is the check
        norms = float(np.max(np.sum(z * z, axis=1)))  # the kernels expand |a - b|^2 = |a|^2 + |b|^2 - 2 a.b
        widest = float(np.sum(np.ptp(z, axis=0) ** 2))  # >= every squared distance between two points
        exponent = 4.0 * gamma * widest  # 4x: room for the rounding of that expansion
    if not math.isfinite(norms):
        raise _fail("the points z are too large to compare (their squared norms overflow)", source)
    if not math.isfinite(exponent):
        raise _fail(f"gamma {gamma!r} is too large for these points (gamma x squared distance overflows)", source)


def _weighted_points(data: dict[str, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    z, beta = _read_points(data, source, np.float64, _fail)
    if z.ndim < 2 or z.shape[0] == 0 or z.size == 0:
        raise _fail(f"z must be a non-empty K x d array, got shape {z.shape}", source)
    z = z.reshape(z.shape[0], -1)
    _check_weights(z, beta, source, _fail, "rows")
    return z, beta


def table_from_dict(data: Any, cls, source: str = "specification", *,  # type: ignore[no-untyped-def]
                    spec_type: registry.SpecType = registry.TABLE, keys: tuple[str, ...] = CORE_KEYS):
    """Validate ``data`` and build a fitted table spec of class ``cls`` (the text codec reuses this)."""
    if not isinstance(data, dict):
        raise _fail("not a JSON object", source)
    missing = [k for k in CORE_KEYS if k not in data]
    if missing:
        raise _fail(f"missing key(s) {', '.join(missing)}", source)
    if data["type"] not in spec_type.names:
        raise _fail(f"type is {data['type']!r}, expected {spec_type.name!r}", source)
    _check_version(data, source)
    if data.get("dtype", "float64") not in ("float64", "float32"):
        raise _fail(f"dtype {data.get('dtype')!r} is not supported", source)
    z, beta = _weighted_points(data, source)
    gamma = data["gamma"]
    _check_gamma(gamma, z, source)
    n = data["num_points"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise _fail(f"num_points must be a positive integer, got {n!r}", source)
    if "checksum" in data and data["checksum"] != checksum(data, keys):
        raise _fail("checksum mismatch: the file was altered or damaged", source)
    params = _known_params(cls, data.get("params"))
    spec = cls(**params)
    if "gamma" not in params:  # a reference file: it was fitted with its gamma
        spec.gamma = float(gamma)
    spec.gamma_ = float(gamma)
    spec.fit_gamma_, spec.fit_scale_ = _read_fit(data, z.shape[1], source)
    spec.z_ = z
    spec.beta_ = beta
    spec.num_points_ = int(n)
    spec._self_inner = None
    return spec


def save_dict(data: dict[str, Any], path: str | Path) -> None:
    """Write compact JSON atomically (temp file + rename), so a crash never leaves half a file."""
    write_atomic(Path(path), json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8"))


def read_bytes(path: str | Path) -> bytes:
    """A specification file's bytes (clear errors for a missing or unreadable file)."""
    path = Path(path)
    if not path.is_file():
        raise no_file("specification file", path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read ({exc.strerror})") from None


def parse_dict(raw: bytes, source: str) -> dict[str, Any]:
    """The JSON object of a specification file's bytes (clear errors for anything else)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("not a text (JSON) file", source) from None
    if not text.strip():
        raise _fail("the file is empty", source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON (truncated?) at line {exc.lineno} column {exc.colno}", source) from None
    except RecursionError:  # hostile nesting; json's own recursion check
        raise _fail("JSON nested too deeply", source) from None
    if not isinstance(data, dict):
        raise _fail("not a JSON object", source)
    return data


def read_dict(path: str | Path) -> dict[str, Any]:
    return parse_dict(read_bytes(path), str(path))


def spec_from_dict(data: Any, source: str = "specification"):  # type: ignore[no-untyped-def]
    """Build a fitted spec of the right class from a parsed file, dispatching on its ``type``."""
    spec_type = registry.by_name(data.get("type")) if isinstance(data, dict) else None
    if spec_type is None:
        kind = data.get("type") if isinstance(data, dict) else None
        raise _fail(f"unknown specification type {kind!r}", source)
    cls = spec_type.spec_class()
    return cls.codec.from_dict(data, cls, source)


def load_spec(path: str | Path):  # type: ignore[no-untyped-def]
    """Load any known specification file (table, image, text), dispatching on its ``type``."""
    return spec_from_dict(read_dict(path), source=str(path))


# -- image ---------------------------------------------------------------------------


def _short_float32(values) -> list:  # type: ignore[no-untyped-def]
    # shortest decimal that reads back as the same float32 (z is float32, as in the reference)
    flat = [float(np.format_float_positional(v, unique=True, trim="0")) for v in np.asarray(values, np.float32).ravel()]
    return np.array(flat, dtype=np.float64).reshape(np.shape(values)).tolist()


def image_to_dict(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    spec._check_fitted()
    data: dict[str, Any] = {
        "RKME_IMAGE_VERSION": spec.VERSION,
        "msg": None,
        "z": _short_float32(spec.z_),
        "beta": spec.beta_.tolist(),
        "n_models": int(spec.n_models),
        "model_config": dict(getattr(spec, "model_config_", None) or model_config(spec)),
        "type": spec.type,
        "num_points": int(spec.num_points_),
        "schema_version": SCHEMA_VERSION,
        "dtype": "float32",
        "params": _file_params(spec),
        "preprocess": getattr(spec, "preprocess_", None),
    }
    data["checksum"] = checksum(data, IMAGE_CORE_KEYS)
    return data


def model_config(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The reference's ``model_config``: channels = k * net_width; only net_depth matters for the kernel."""
    return {"k": 1, "mu": 0, "sigma": None, "net_width": int(spec.net_width), "net_depth": 3}


def _image_fail(msg: str, source: str) -> SpecFileError:
    return _fail(msg, source, "lwdock spec image DATA.npy -o SPEC")


def _image_points(data: dict[str, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    z, beta = _read_points(data, source, np.float32, _image_fail)
    if z.ndim != 4 or z.shape[0] == 0 or z.shape[2:] != (32, 32) or z.shape[1] < 1:
        raise _image_fail(f"z has shape {z.shape}, but type {registry.IMAGE.name!r} needs a non-empty "
                          "K x C x 32 x 32 array", source)
    _check_weights(z, beta, source, _image_fail, "images")
    return z, beta


def image_from_dict(data: Any, cls, source: str = "specification"):  # type: ignore[no-untyped-def]
    """Validate an image spec (ours or the reference's) and build a fitted ``cls`` (an image spec class)."""
    if not isinstance(data, dict):
        raise _image_fail("not a JSON object", source)
    missing = [k for k in ("z", "beta", "type") if k not in data]
    if missing:
        raise _image_fail(f"missing key(s) {', '.join(missing)}", source)
    if data["type"] not in registry.IMAGE.names:
        raise _image_fail(f"type is {data['type']!r}, expected {registry.IMAGE.name!r}", source)
    _check_version(data, source)
    z, beta = _image_points(data, source)
    config = data.get("model_config") if isinstance(data.get("model_config"), dict) else {}
    depth = config.get("net_depth", 3)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 3:
        raise _image_fail(f"model_config.net_depth must be 1, 2 or 3 for 32x32 images, got {depth!r}", source)
    n = data.get("num_points")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise _image_fail(f"num_points must be a positive integer, got {n!r}", source)
    if "checksum" in data and data["checksum"] != checksum(data, IMAGE_CORE_KEYS):
        raise _image_fail("checksum mismatch: the file was altered or damaged", source)
    params = _known_params(cls, data.get("params"))
    spec = cls(**params)
    if isinstance(data.get("n_models"), int) and "n_models" not in params:
        spec.n_models = int(data["n_models"])
    spec.z_ = z
    spec.beta_ = beta
    spec.num_points_ = int(n) if n is not None else 0  # reference files do not record it
    spec.model_config_ = dict(config) if config else model_config(spec)
    spec.preprocess_ = data.get("preprocess")
    spec._self_inner = None
    return spec


# -- text ----------------------------------------------------------------------------


def text_to_dict(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    data = table_to_dict(spec)
    data.pop("checksum")
    data["language"] = list(spec.language_)
    data["embedder"] = spec.embedder_
    data["embedding_dim"] = int(spec.embedding_dim_)
    data["checksum"] = checksum(data, TEXT_CORE_KEYS)
    return data


def text_from_dict(data: Any, cls, source: str = "specification"):  # type: ignore[no-untyped-def]
    """Validate a text spec (ours or the reference's) and build a fitted ``cls`` (a text spec class).

    A reference file has no ``embedder``: it was made with the reference's multilingual MiniLM,
    recorded as :data:`lwdock.spec.embedders.REFERENCE_EMBEDDER`, so comparing it with ours fails clearly.
    """
    spec = table_from_dict(data, cls, source, spec_type=registry.TEXT, keys=TEXT_CORE_KEYS)
    language = data.get("language", [])
    if not isinstance(language, list) or not all(isinstance(x, str) for x in language):
        raise _fail(f"language must be a list of strings, got {language!r}", source)
    embedder = data.get("embedder", REFERENCE_EMBEDDER)
    if not isinstance(embedder, str) or not embedder:
        raise _fail(f"embedder must be a name, got {embedder!r}", source)
    dim = data.get("embedding_dim", spec.dim)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim != spec.dim:
        raise _fail(f"embedding_dim {dim!r} does not match z's {spec.dim} columns", source)
    spec.language_ = list(language)
    spec.embedder_ = embedder
    spec.embedding_dim_ = int(dim)
    spec.embedder = embedder
    return spec


TABLE = Codec(table_to_dict, table_from_dict)
IMAGE = Codec(image_to_dict, image_from_dict)
TEXT = Codec(text_to_dict, text_from_dict)
