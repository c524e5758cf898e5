"""User files for reuse: feature tables, labelled tables, prediction files.

Feature files are read by :func:`lwdock.spec.data.load_data` (``.npy``,
``.npz``, ``.csv``); this module adds the label column and the CSV header.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, UsageError
from ..spec.data import _is_number, load_data, load_images, load_texts


def _csv_header(path: Path) -> list[str] | None:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = next((ln for ln in fh if ln.strip()), "")
    except (OSError, UnicodeDecodeError):
        return None
    delim = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    fields = [f.strip() for f in first.rstrip("\r\n").split(delim)]
    return None if all(_is_number(f) for f in fields) else fields


def load_features(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str] | None]:
    """``(X, column names or None)``."""
    path = Path(path)
    X = load_data(path)
    cols = _csv_header(path) if path.suffix.lower() in (".csv", ".tsv", ".txt") else None
    return X, cols


def load_input(path: str | os.PathLike[str], kind: str = "table", text_field: str | None = None) -> tuple[Any, list[str] | None]:
    """User inputs for learnwares of ``kind``: table rows (:func:`load_features`), images
    (N x C x H x W ``.npy``/``.npz``) or texts (``.txt`` lines, ``.jsonl`` field, ``.csv`` column)."""
    if kind == "image":
        return np.asarray(load_images(path)), None
    if kind == "text":
        return load_texts(path, field=text_field, column=text_field), None
    return load_features(path)


def load_labeled(path: str | os.PathLike[str], label_column: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``(X, y, feature names)``. The label is the last column unless ``label_column`` names one.

    ``label_column`` is a header name or a 0-based index (negative counts from the end).
    A ``.npz`` file may instead hold arrays ``X`` and ``y``.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "X" in z.files and "y" in z.files:
                    X = np.asarray(z["X"])
                    return X.reshape(X.shape[0], -1) if X.ndim else X, np.asarray(z["y"]), None
        except (ValueError, OSError) as exc:
            raise InputDataError(f"{path}: cannot read .npz file ({exc})") from None
    table, cols = load_features(path)
    if table.shape[1] < 2:
        raise InputDataError(f"{path}: a labelled table needs at least one feature column and a label column")
    idx = table.shape[1] - 1
    if label_column is not None:
        if cols is not None and label_column in cols:
            idx = cols.index(label_column)
        else:
            try:
                idx = int(label_column)
            except ValueError:
                raise UsageError(
                    f"label column {label_column!r} is not in {path.name}",
                    hint=f"columns: {', '.join(cols)}" if cols else "the file has no header; give a column index",
                ) from None
            if not -table.shape[1] <= idx < table.shape[1]:
                raise UsageError(f"label column index {idx} is out of range for {table.shape[1]} columns")
            idx %= table.shape[1]
    keep = [j for j in range(table.shape[1]) if j != idx]
    names = [cols[j] for j in keep] if cols else None
    return np.ascontiguousarray(table[:, keep]), np.asarray(table[:, idx]), names


def write_predictions(path: str | os.PathLike[str], pred: np.ndarray, proba: np.ndarray | None = None) -> Path:
    """Write ``.npy`` (the prediction array, or the probabilities when given) or ``.csv``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, proba if proba is not None else pred, allow_pickle=False)
        return path
    if suffix not in (".csv", ".tsv", ".txt"):
        raise UsageError(f"cannot write predictions as {suffix or '(no suffix)'!r}", hint="use .csv or .npy")
    delim = "\t" if suffix == ".tsv" else ","
    P = np.asarray(pred)
    cols: list[Any]
    if P.ndim == 1:
        header, cols = ["prediction"], [P]
    else:
        header, cols = [f"prediction_{j}" for j in range(P.shape[1])], [P[:, j] for j in range(P.shape[1])]
    if proba is not None:
        header += [f"proba_{j}" for j in range(proba.shape[1])]
        cols += [proba[:, j] for j in range(proba.shape[1])]
    fmts = ["%d" if np.asarray(c).dtype.kind in "iub" else "%.10g" for c in cols]
    table = np.column_stack(cols) if len(cols) > 1 else np.asarray(cols[0]).reshape(-1, 1)
    np.savetxt(path, table, delimiter=delim, header=delim.join(header), comments="", fmt=fmts)
    return path
