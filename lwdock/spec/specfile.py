"""Specification files (JSON).

A table RKME file keeps the reference's keys, so reference tools read it::

    {"z": [[...], ...], "beta": [...], "gamma": 0.1, "num_points": n, "type": "RKMETableSpecification",
     "schema_version": 1, "dtype": "float64", "params": {...}, "checksum": "sha256:..."}

Floats are written with Python's shortest round-trip repr, so a save/load round
trip gives identical numbers. The checksum covers the numeric content (the five
reference keys); a reference-written file has neither ``schema_version`` nor
``checksum`` and is accepted as is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, SpecFileError

SCHEMA_VERSION = 1
TABLE_TYPES = ("RKMETableSpecification", "RKMEStatSpecification")  # the second is the reference's legacy alias
CORE_KEYS = ("z", "beta", "gamma", "num_points", "type")


def checksum(data: dict[str, Any]) -> str:
    core = {k: data.get(k) for k in CORE_KEYS}
    blob = json.dumps(core, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def table_to_dict(spec) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    spec._check_fitted()
    params = {k: v for k, v in spec.get_params().items() if k != "n_threads"}
    data: dict[str, Any] = {
        "z": spec.z_.tolist(),
        "beta": spec.beta_.tolist(),
        "gamma": float(spec.gamma),
        "num_points": int(spec.num_points_),
        "type": spec.type,
        "schema_version": SCHEMA_VERSION,
        "dtype": "float64",
        "params": params,
    }
    data["checksum"] = checksum(data)
    return data


def _fail(msg: str, source: str) -> SpecFileError:
    return SpecFileError(f"{source}: {msg}", hint="rebuild it with `lwdock spec table DATA -o SPEC`")


def table_from_dict(data: Any, cls=None, source: str = "specification"):  # type: ignore[no-untyped-def]
    """Validate ``data`` and build a fitted table spec from it."""
    import numpy as np

    if cls is None:
        from .rkme_table import RKMETableSpec as cls  # noqa: N813
    if not isinstance(data, dict):
        raise _fail("not a JSON object", source)
    missing = [k for k in CORE_KEYS if k not in data]
    if missing:
        raise _fail(f"missing key(s) {', '.join(missing)}", source)
    if data["type"] not in TABLE_TYPES:
        raise _fail(f"type is {data['type']!r}, expected 'RKMETableSpecification'", source)
    version = data.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION or version < 1):
        raise _fail(f"schema_version {version!r} is not supported (this lwdock reads up to {SCHEMA_VERSION})", source)
    if data.get("dtype", "float64") not in ("float64", "float32"):
        raise _fail(f"dtype {data.get('dtype')!r} is not supported", source)
    try:
        z = np.array(data["z"], dtype=np.float64)
        beta = np.array(data["beta"], dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail("z and beta must be numeric arrays", source) from None
    if z.ndim < 2 or z.shape[0] == 0 or z.size == 0:
        raise _fail(f"z must be a non-empty K x d array, got shape {z.shape}", source)
    z = z.reshape(z.shape[0], -1)
    if beta.ndim != 1 or beta.shape[0] != z.shape[0]:
        raise _fail(f"beta has shape {beta.shape} but z has {z.shape[0]} rows", source)
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta))):
        raise _fail("z or beta contains NaN or Inf", source)
    gamma = data["gamma"]
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not math.isfinite(gamma) or gamma <= 0:
        raise _fail(f"gamma must be a positive number, got {gamma!r}", source)
    n = data["num_points"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise _fail(f"num_points must be a positive integer, got {n!r}", source)
    if "checksum" in data and data["checksum"] != checksum(data):
        raise _fail("checksum mismatch: the file was altered or damaged", source)
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    known = cls().get_params()
    spec = cls(**{k: v for k, v in params.items() if k in known})
    spec.gamma = float(gamma)
    spec.z_ = z
    spec.beta_ = beta
    spec.num_points_ = int(n)
    spec._self_inner = None
    return spec


def save_dict(data: dict[str, Any], path: str | Path) -> None:
    """Write compact JSON atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_dict(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"specification file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail("not a text (JSON) file", str(path)) from None
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise _fail("the file is empty", str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON (truncated?) at line {exc.lineno} column {exc.colno}", str(path)) from None
    if not isinstance(data, dict):
        raise _fail("not a JSON object", str(path))
    return data


def load_spec(path: str | Path):  # type: ignore[no-untyped-def]
    """Load any known specification file, dispatching on its ``type``."""
    data = read_dict(path)
    kind = data.get("type")
    if kind in TABLE_TYPES:
        return table_from_dict(data, source=str(path))
    raise _fail(f"unknown specification type {kind!r}", str(path))
