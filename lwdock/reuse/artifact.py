"""The ``.lwe`` ensemble artifact: a zip with ``ensemble.json`` and ``arrays.npz``.

Nothing in it is pickled. ``ensemble.json`` holds every scalar and string
(format, versions, method, hyperparameters, learnware ids, input schema,
fitted scalars, the evaluation report); ``arrays.npz`` holds the fitted
arrays (weights, selector points, linear coefficients) and is read with
``allow_pickle=False``. The layout is described in ``docs/reuse.md``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ArtifactError, no_file

# The reuser classes (scikit-learn) are imported when an artifact names its method: reading or
# checking an artifact's header does not need them.

FORMAT = "lwdock-ensemble"
FORMAT_VERSION = 1
JSON_NAME = "ensemble.json"
ARRAYS_NAME = "arrays.npz"
MAX_MEMBER_BYTES = 2 * 2**30  # refuse absurd members before reading them


def reuser_class(method: str) -> type:
    from .heterogeneous import ALIGNED_REUSERS
    from .augment import FeatureAugmentReuser
    from .averaging import AveragingReuser
    from .baseline import BaselineModel
    from .job_selector import JobSelectorReuser
    from .pruning import EnsemblePruningReuser

    classes = {
        "average": AveragingReuser,
        "job-selector": JobSelectorReuser,
        "ensemble-pruning": EnsemblePruningReuser,
        "feature-augment": FeatureAugmentReuser,
        "baseline": BaselineModel,
        **ALIGNED_REUSERS,  # feature-align and the aligned augment/pruning (lwdock.reuse.aligned)
    }
    try:
        return classes[method]
    except KeyError:
        raise ArtifactError(f"unknown reuse method {method!r}") from None


NOT_SAVED = ("learnwares", "specs", "weights")  # handles, RKMEs and given weights live elsewhere


def _jsonable(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write(path: str | os.PathLike[str], reuser: Any, header: dict[str, Any]) -> Path:
    """Write ``reuser``'s fitted state plus ``header`` (learnwares, schema, report) atomically."""
    meta, arrays = reuser._get_state()
    params = {k: _jsonable(v) for k, v in reuser.get_params(deep=False).items() if k not in NOT_SAVED}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lwdock_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": reuser.method,
        "params": params,
        "state": meta,
        **header,
        "arrays": {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in arrays.items()},
    }
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(JSON_NAME, json.dumps(doc, indent=2, sort_keys=False, default=_jsonable))
            zf.writestr(ARRAYS_NAME, buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(document, arrays)`` of an artifact, validated; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise no_file("ensemble file", path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = {i.filename: i for i in zf.infolist()}
            for need in (JSON_NAME, ARRAYS_NAME):
                if need not in names:
                    raise ArtifactError(f"{path} is not an lwdock ensemble: {need} is missing")
                if names[need].file_size > MAX_MEMBER_BYTES:
                    raise ArtifactError(f"{path}: {need} is larger than {MAX_MEMBER_BYTES >> 20} MiB")
            doc = json.loads(zf.read(JSON_NAME).decode("utf-8"))
            raw = zf.read(ARRAYS_NAME)
    except zipfile.BadZipFile:
        raise ArtifactError(f"{path} is not an lwdock ensemble (not a zip file)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: {JSON_NAME} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not an lwdock ensemble (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has ensemble format version {version}; this lwdock reads up to {FORMAT_VERSION}", hint="upgrade lwdock"
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path}: {ARRAYS_NAME} is unreadable ({exc})") from None
    for key in ("method", "params", "state", "learnwares", "input_schema"):
        if key not in doc:
            raise ArtifactError(f"{path}: {JSON_NAME} has no {key!r}")
    declared = doc.get("arrays") or {}
    if set(declared) != set(arrays):
        raise ArtifactError(f"{path}: the arrays in {ARRAYS_NAME} do not match {JSON_NAME}")
    return doc, arrays


def rebuild(doc: dict[str, Any], arrays: dict[str, np.ndarray], handles: list[Any]) -> Any:
    """A fitted reuser from an artifact's document and arrays, running on ``handles``."""
    cls = reuser_class(doc["method"])
    params = dict(doc["params"])
    if doc["method"] != "baseline":
        params["learnwares"] = handles
    try:
        reuser = cls(**params)
        reuser._set_state(doc["state"], arrays)
    except (TypeError, KeyError, ValueError) as exc:
        raise ArtifactError(f"ensemble state for method {doc['method']!r} is inconsistent: {exc}") from None
    return reuser
