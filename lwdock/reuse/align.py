"""Learnwares with different column orders or label sets, combined on one footing.

Each learnware says which columns it takes (its semantic ``Input.Description``, when it names
every column) and which labels its class positions stand for (``Output.Description``; see
:mod:`lwdock.format.labels`). An ensemble takes one column order (the first named learnware's)
and one label list (the learnwares' own when they agree, else the sorted union of their labels,
plus any label the user's rows add). :class:`AlignedPredictor` sits between a reuser and a
learnware whose order or labels differ: it hands the learnware its columns in its own order and
places its outputs at the ensemble's positions of its labels, so every reuser (averaging, the
job selector, pruning, feature augmentation) combines learnwares by label value, never by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError, ModelRuntimeError
from ..format.labels import classes_of
from ..records import Semantic
from ..spec.data import named_columns


@dataclass(frozen=True)
class LearnwareIO:
    """The column names a learnware takes (None: unnamed) and the labels of its classes (classifiers)."""

    columns: list[str] | None = None
    classes: list[str] | None = None

    @classmethod
    def of(cls, semantic: Semantic) -> LearnwareIO:
        columns = named_columns(semantic.input_dim, semantic.input_names)
        classes = classes_of(semantic) if (semantic.task or "").lower() == "classification" else None
        return cls(columns, classes)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "classes": self.classes}


def ensemble_columns(ios: Sequence[LearnwareIO]) -> list[str] | None:
    """The column order of an ensemble: the first named learnware's; every named one must take the same set."""
    named = [io.columns for io in ios if io.columns]
    if not named:
        return None
    first = named[0]
    for other in named[1:]:
        if set(other) != set(first):
            missing = [c for c in first if c not in other]
            extra = [c for c in other if c not in first]
            raise InputDataError(
                "the learnwares take different columns: one lacks " + (", ".join(missing) or "nothing")
                + "; another has " + (", ".join(extra) or "nothing") + " more",
                hint="reuse learnwares made for the same table (lwdock show ID lists a learnware's columns)")
    return list(first)


class AlignedPredictor:
    """A learnware handle seen through the ensemble's column order and label list.

    ``take``: the ensemble columns to hand the learnware, in its order (None: as they are).
    ``place``: the ensemble position of each of the learnware's classes (None: the same positions).
    """

    def __init__(self, inner: Any, take: Sequence[int] | None, place: Sequence[int] | None, n_classes: int | None) -> None:
        self.inner = inner
        self.take = np.asarray(take, dtype=np.int64) if take is not None else None
        self.place = np.asarray(place, dtype=np.int64) if place is not None else None
        self.n_classes = n_classes

    @property
    def id(self) -> Any:
        return getattr(self.inner, "id", None)

    @property
    def concurrent(self) -> bool:
        return bool(getattr(self.inner, "concurrent", False))

    @property
    def output_kind(self) -> Any:
        return getattr(self.inner, "output_kind", None)

    def predict(self, X: np.ndarray) -> Any:
        if self.take is not None:
            X = np.ascontiguousarray(np.asarray(X)[:, self.take])
        raw = self.inner.predict(X)
        return raw if self.place is None else place_outputs(raw, self.place, int(self.n_classes or 0), self.id)

    def __deepcopy__(self, memo: dict) -> AlignedPredictor:
        return self  # scikit-learn's clone must keep the live handle, as for the handles it wraps

    def __repr__(self) -> str:
        return f"AlignedPredictor({self.inner!r})"


def place_outputs(raw: Any, place: np.ndarray, n_classes: int, name: Any = None) -> Any:
    """A learnware's labels or class columns moved to the ensemble's positions of its labels.

    Probability columns of classes the learnware does not know are 0; score columns get less than
    the row's lowest score, so they never win. Outputs of another shape are returned as they are
    (the reuser's output check names what is wrong with them).
    """
    if hasattr(raw, "detach"):  # a torch tensor from a trusted model
        raw = raw.detach().cpu().numpy()
    out = np.asarray(raw)
    if out.dtype.kind not in "biuf" or out.ndim not in (1, 2):
        return raw
    if out.ndim == 1 or out.shape[1] == 1:
        flat = out.reshape(-1)
        if flat.size and (np.any(flat != np.round(flat)) or flat.min() < 0 or flat.max() >= len(place)):
            raise ModelRuntimeError(f"learnware {str(name or '')[:12]} returned labels outside 0..{len(place) - 1}")
        return place[flat.astype(np.int64)]
    if out.shape[1] != len(place):
        return raw
    out = out.astype(np.float64, copy=False)
    is_proba = bool(np.all(out >= -1e-9) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))
    fill = 0.0 if is_proba else (out.min(axis=1, keepdims=True) - 1.0 if out.size else 0.0)
    full = np.empty((out.shape[0], n_classes), dtype=np.float64)
    full[:] = fill
    full[:, place] = out
    return full


def align_handles(handles: Sequence[Any], ios: Sequence[LearnwareIO], columns: list[str] | None,
                  classes: list[str] | None) -> list[Any]:
    """``handles`` wrapped where a learnware's columns or labels differ from the ensemble's."""
    out = []
    for h, io in zip(handles, ios):
        take = None
        if columns and io.columns and io.columns != columns:
            take = [columns.index(c) for c in io.columns]
        place = None
        if classes is not None and io.classes is not None and io.classes != classes:
            place = [classes.index(c) for c in io.classes]
        out.append(h if take is None and place is None else AlignedPredictor(h, take, place, len(classes or [])))
    return out


def permute_spec(spec: Any, io: LearnwareIO, columns: list[str] | None) -> Any:
    """A table spec's points in the ensemble's column order (the job selector herds from them)."""
    if not columns or not io.columns or io.columns == columns or not hasattr(spec, "z_"):
        return spec
    z = np.asarray(spec.z_)
    moved = np.empty_like(z)
    moved[:, [columns.index(c) for c in io.columns]] = z
    spec.z_ = moved
    return spec
