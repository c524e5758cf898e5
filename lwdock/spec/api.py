"""File-level entry points used by the CLI (``lwdock spec table`` / ``lwdock spec show``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import InputDataError


def summary(spec: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Plain-data description of a fitted table spec."""
    import numpy as np

    beta = np.asarray(spec.beta_)
    out: dict[str, Any] = {
        "type": spec.type,
        "dim": spec.dim,
        "K": int(spec.z_.shape[0]),
        "gamma": float(spec.gamma),
        "num_points": int(spec.num_points_),
        "beta_min": float(beta.min()),
        "beta_max": float(beta.max()),
        "beta_nonzero": int((beta > 1e-12).sum()),
        "self_inner": float(spec.inner_prod(spec)),
    }
    if path is not None:
        out["path"] = str(path)
    return out


def build_table_spec(data_path: str | Path, out_path: str | Path, **params: Any) -> dict[str, Any]:
    """Read DATA, fit an :class:`RKMETableSpec` with ``params``, write it to ``out_path``; return a summary."""
    from .data import load_data
    from .rkme_table import RKMETableSpec

    X = load_data(data_path)
    t0 = time.perf_counter()
    spec = RKMETableSpec(**params).fit(X)
    seconds = time.perf_counter() - t0
    spec.save(out_path)
    out = summary(spec, out_path)
    out["fit_seconds"] = round(seconds, 4)
    out["guard_moved"] = int(getattr(spec, "guard_moved_", 0))
    if getattr(spec, "suggested_gamma_", None) is not None:
        out["suggested_gamma"] = float(spec.suggested_gamma_)
    return out


def describe_spec(spec_path: str | Path, data_path: str | Path | None = None, threshold: float = 0.01) -> dict[str, Any]:
    """Summary of a spec file; with ``data_path``, also its raw-row leak figure against that data."""
    from .specfile import load_spec

    spec = load_spec(spec_path)
    out = summary(spec, spec_path)
    if data_path is not None:
        from ._fit import fill_values
        from .data import load_data
        from .leak import leak_report

        X = load_data(data_path)
        if X.shape[1] != spec.dim:
            raise InputDataError(f"the data has {X.shape[1]} columns but the specification has dimension {spec.dim}")
        out["leak"] = leak_report(spec.z_, X, threshold=threshold, fill=fill_values(X))
    return out
