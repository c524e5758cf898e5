"""File-level entry points used by the CLI (``lwdock spec table`` / ``lwdock spec show``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..progress import bar
from . import quality, registry
from ._fit import fill_values
from .data import load_data, load_images, load_texts
from .leak import leak_report
from .rkme_image import RKMEImageSpec
from .rkme_table import RKMETableSpec
from .rkme_text import RKMETextSpec
from .specfile import fit_record, load_spec


def summary(spec: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Plain-data description of a fitted spec (table, image or text)."""
    beta = np.asarray(spec.beta_)
    out: dict[str, Any] = {
        "type": spec.type,
        "dim": spec.dim,
        "K": int(spec.z_.shape[0]),
        "num_points": int(spec.num_points_),
        "beta_min": float(beta.min()),
        "beta_max": float(beta.max()),
        "beta_nonzero": int((beta > 1e-12).sum()),
        "self_inner": float(spec.inner_prod(spec)),
    }
    if hasattr(spec, "kernel_gamma"):
        out["gamma"] = spec.kernel_gamma()
        fit = fit_record(spec)
        if fit is not None:
            out["fit_units"], out["fit_gamma"] = fit["units"], fit["gamma"]
        out["spec_quality"] = quality.assess(spec)
    kind = registry.by_name(spec.type).kind
    if kind == "image":
        out["shape"] = list(spec.shape)
        out["kernel"] = f"NNGP (depth {spec.depth})"
        out["whitened"] = bool((getattr(spec, "preprocess_", None) or {}).get("whitened", False))
    if kind == "text":
        out["embedder"] = spec.embedder_
        out["embedding_dim"] = int(spec.embedding_dim_)
        out["language"] = list(spec.language_)
    if path is not None:
        out["path"] = str(path)
    return out


def _fit_and_save(spec: Any, fit: Any, out_path: str | Path) -> dict[str, Any]:
    """Run ``fit()`` (which fits ``spec``), write the spec to ``out_path``; its summary with the fit time."""
    t0 = time.perf_counter()
    fit()
    seconds = time.perf_counter() - t0
    spec.save(out_path)
    out = summary(spec, out_path)
    out["fit_seconds"] = round(seconds, 4)
    return out


def build_table_spec(data_path: str | Path, out_path: str | Path, **params: Any) -> dict[str, Any]:
    """Read DATA, fit an :class:`RKMETableSpec` with ``params``, write it to ``out_path``; return a summary."""
    X = load_data(data_path)
    spec = RKMETableSpec(**params)
    out = _fit_and_save(spec, lambda: spec.fit(X), out_path)
    out["guard_moved"] = int(getattr(spec, "guard_moved_", 0))
    if getattr(spec, "suggested_gamma_", None) is not None:
        out["suggested_gamma"] = float(spec.suggested_gamma_)
    return out


def build_image_spec(data_path: str | Path, out_path: str | Path, *, max_samples: int | None = None,
                     **params: Any) -> dict[str, Any]:
    """Read N x C x H x W images, fit an :class:`RKMEImageSpec`, write it; return a summary.

    ``max_samples`` is the spec's ``sample_size`` (a seeded subsample).
    """
    X = load_images(data_path)
    if max_samples is not None:
        params["sample_size"] = int(max_samples)
    spec = RKMEImageSpec(**params)
    return _fit_and_save(spec, lambda: spec.fit(X), out_path)


def build_text_spec(data_path: str | Path, out_path: str | Path, *, field: str | None = None,
                    column: str | None = None, **params: Any) -> dict[str, Any]:
    """Read texts (.txt lines, .jsonl field, .csv column), fit an :class:`RKMETextSpec`, write it."""
    texts = load_texts(data_path, field=field, column=column)
    spec = RKMETextSpec(**params)

    def fit() -> None:
        with bar(len(texts) if len(texts) >= 1000 else None, "embedding texts") as progress:
            spec.fit(texts, progress=progress.advance)

    return _fit_and_save(spec, fit, out_path)


def describe_spec(spec_path: str | Path, data_path: str | Path | None = None, threshold: float = 0.01) -> dict[str, Any]:
    """Summary of a spec file; with ``data_path``, also its raw-row leak figure against that data."""
    spec = load_spec(spec_path)
    out = summary(spec, spec_path)
    if data_path is not None:
        if registry.by_name(spec.type) is not registry.TABLE:
            raise InputDataError("--data (the raw-row leak figure) applies to table specifications only")
        X = load_data(data_path)
        if X.shape[1] != spec.dim:
            raise InputDataError(f"the data has {X.shape[1]} columns but the specification has dimension {spec.dim}")
        out["leak"] = leak_report(spec.z_, X, threshold=threshold, fill=fill_values(X))
    return out
