"""Is a table or text spec a faithful summary of its data? The gamma it was fitted with says.

A spec fitted with a gamma that is degenerate for its own points (kernel values between them
all but vanish, or are all close to 1) is a lossy summary: its weights end up close to uniform
over k-means centres and it can be found only by luck. The dock accepts such a spec (a
reference-format file fitted with gamma 0.1 on raw pixels is one), but never silently: the
submit warns and the learnware carries ``spec_quality = "degenerate-gamma"`` in its spec
summary, in ``lwdock info`` and in search results (docs/spec.md).

The figure is ``gamma_fit x median squared distance between the spec's own points``, in the
units the fit used (standardised columns for lwdock's automatic fit, raw units otherwise; a
reference file records no fit, so its ``gamma`` on raw units). lwdock's automatic fit gives
about 1 by construction; gamma 0.1 on 0-16 pixel values gives about 250.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._fit import GAMMA_HIGH, GAMMA_LOW
from .kernels import median_sq_distance

OK = "ok"
DEGENERATE = "degenerate-gamma"


def gamma_ratio(spec: Any) -> float | None:
    """``gamma_fit x median squared distance`` of the spec's points in its fit units; None for a
    spec without an RBF gamma (images) or with fewer than two distinct points."""
    if not hasattr(spec, "kernel_gamma"):
        return None
    z = np.asarray(spec.z_, dtype=np.float64).reshape(len(spec.z_), -1)
    gamma = getattr(spec, "fit_gamma_", None)
    scale = getattr(spec, "fit_scale_", None) if gamma is not None else None
    if gamma is None:
        gamma = spec.kernel_gamma()
    pts = z / np.asarray(scale) if scale is not None else z
    med = median_sq_distance(pts, positive=True)
    return float(gamma * med) if med > 0 else None


def assess(spec: Any) -> str | None:
    """``"ok"``, ``"degenerate-gamma"``, or None when the question does not apply (images)."""
    ratio = gamma_ratio(spec)
    if ratio is None:
        return None if not hasattr(spec, "kernel_gamma") else OK
    return DEGENERATE if ratio > GAMMA_HIGH or ratio < GAMMA_LOW else OK


def warning(spec: Any) -> str | None:
    """A one-line warning for a degenerate spec, else None."""
    ratio = gamma_ratio(spec)
    if ratio is None or GAMMA_LOW <= ratio <= GAMMA_HIGH:
        return None
    how = "too large" if ratio > GAMMA_HIGH else "too small"
    return (f"its specification was fitted with a gamma {how} for its own points (gamma x median squared "
            f"distance = {ratio:.3g}): it summarises its data poorly and may rank low; refit it without a "
            "gamma (`lwdock spec table DATA -o SPEC`, or `lwdock pack` from the data)")
