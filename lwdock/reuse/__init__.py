"""Reuse: combine learnwares into one model for the user's task (docs/reuse.md).

The reusers are scikit-learn estimators; :func:`reuse` builds an :class:`Ensemble` of dock
learnwares, :func:`load_ensemble` reads a saved ``.lwe`` artifact. Names load lazily, so
importing this package does not import numpy or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "reuse": "lwdock.reuse.api",
    "load_ensemble": "lwdock.reuse.api",
    "build_ensemble": "lwdock.reuse.api",
    "Ensemble": "lwdock.reuse.api",
    "METHODS": "lwdock.reuse.api",
    "AveragingReuser": "lwdock.reuse.averaging",
    "JobSelectorReuser": "lwdock.reuse.job_selector",
    "EnsemblePruningReuser": "lwdock.reuse.pruning",
    "FeatureAugmentReuser": "lwdock.reuse.augment",
    "BaselineModel": "lwdock.reuse.baseline",
    "InProcessPredictor": "lwdock.reuse.base",
    "Predictor": "lwdock.reuse.base",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .api import METHODS, Ensemble, build_ensemble, load_ensemble, reuse  # noqa: F401
    from .augment import FeatureAugmentReuser  # noqa: F401
    from .averaging import AveragingReuser  # noqa: F401
    from .base import InProcessPredictor, Predictor  # noqa: F401
    from .baseline import BaselineModel  # noqa: F401
    from .job_selector import JobSelectorReuser  # noqa: F401
    from .pruning import EnsemblePruningReuser  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lwdock.reuse' has no attribute {name!r}")
