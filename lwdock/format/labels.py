"""Class labels: one spelling per label, the classes a learnware declares, and label <-> index maps.

A classifier learnware predicts class *positions* ``0..C-1`` (labels) or ``C`` columns
(probabilities), as the reference's contract says. Which label each position stands for is
the semantic spec's ``Output.Description`` (``{"0": "barolo", "1": "barbera", ...}``): the
model wrapper that ``lwdock pack`` writes maps the model's own classes onto those positions,
and lwdock maps positions back to labels when it writes predictions.

Labels are compared by :func:`canonical` spelling, so ``3``, ``3.0``, ``"3"`` and
``numpy.int64(3)`` are one label, and a CSV's ``"barolo"`` is the model's ``'barolo'``.
The model wrapper template carries its own copy of :func:`canonical` (it runs in the
learnware's environment, where lwdock need not be installed); the two must agree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..records import Semantic

logger = logging.getLogger("lwdock")


def canonical(value: Any) -> str:
    """The one spelling of a label: integral numbers without a decimal point, other numbers by
    their shortest repr, text stripped."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, (float, np.floating)):
        text = str(value).strip()
        try:
            value = float(text)
        except ValueError:
            return text
        if not math.isfinite(value):
            return text
    f = float(value)
    if math.isfinite(f) and f.is_integer():
        return str(int(f))
    return repr(f)


def _numeric(label: str) -> float | None:
    try:
        f = float(label)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def sort_labels(labels: Iterable[Any]) -> list[str]:
    """Distinct labels in canonical spelling, sorted as ``numpy.unique`` sorts the values: by value
    when every label is a number, else as text."""
    uniq = sorted({canonical(v) for v in labels})
    nums = [_numeric(v) for v in uniq]
    if all(n is not None for n in nums):
        return [v for _, v in sorted(zip(nums, uniq))]
    return uniq


def declared_classes(semantic: Semantic) -> list[str] | None:
    """The labels of a classifier's positions ``0..C-1`` from ``Output.Description``, or None
    when the description does not name every class (or names two the same)."""
    if (semantic.task or "").lower() != "classification" or not semantic.output_dim:
        return None
    names = semantic.output_names
    if len(names) < semantic.output_dim:
        return None
    classes = [canonical(names[i]) for i in range(semantic.output_dim)]
    return classes if len(set(classes)) == len(classes) else None


def classes_of(semantic: Semantic) -> list[str]:
    """The labels of a classifier learnware: the declared ones, else the positions ``"0".."C-1"``."""
    declared = declared_classes(semantic)
    if declared is not None:
        return declared
    if semantic.output_names:
        logger.info("learnware %r: Output.Description does not name each of its %s classes once; "
                    "its classes are taken as 0..%s", semantic.name, semantic.output_dim, (semantic.output_dim or 1) - 1)
    return [str(i) for i in range(int(semantic.output_dim or 0))]


def label_values(classes: Sequence[str]) -> np.ndarray:
    """The labels as an array for users: integers when every label is one, else strings."""
    if all(_is_int(c) for c in classes):
        return np.asarray([int(c) for c in classes], dtype=np.int64)
    return np.asarray(list(classes), dtype=str)


def _is_int(label: str) -> bool:
    return label.lstrip("-").isdigit()


def encode(y: Any, classes: Sequence[str], what: str = "labels") -> np.ndarray:
    """Positions of ``y``'s labels in ``classes``; an InputDataError lists labels that are not there."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputDataError(f"{what} must be one column, got shape {arr.shape}")
    uniq, inverse = np.unique(arr, return_inverse=True)
    index = {c: i for i, c in enumerate(classes)}
    keys = [canonical(v) for v in uniq]
    unknown = [k for k in keys if k not in index]
    if unknown:
        regression = all(_numeric(k) is not None for k in keys) and not all(_is_int(k) for k in unknown)
        raise InputDataError(
            f"{what} hold {len(unknown)} value(s) that are not among the learnwares' classes: {', '.join(unknown[:10])}",
            hint=("is this a regression target? " if regression else "")
            + f"the learnwares' classes: {', '.join(list(classes)[:20])}" + (" ..." if len(classes) > 20 else ""))
    return np.asarray([index[k] for k in keys], dtype=np.int64)[inverse.reshape(-1)]


def merge_classes(lists: Sequence[Sequence[str]]) -> list[str]:
    """One label list for several learnwares: theirs when they all agree, else the sorted union."""
    first = list(lists[0]) if lists else []
    if all(list(c) == first for c in lists):
        return first
    return sort_labels(c for cl in lists for c in cl)
