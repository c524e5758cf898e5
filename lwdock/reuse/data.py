"""User files for reuse and predict: feature tables, labelled tables, prediction files.

Tables are read by :func:`lwdock.spec.data.read_table`, the one reader of user tables (header
detection, column names, a label column taken out). A job that streams its input calls the
three steps here on each chunk: read it (:func:`iter_input`, which reads a CSV's header once and
then yields tables of at most ``chunk_rows`` rows; a ``.npy`` file is memory-mapped and sliced),
put its columns in the ensemble's order (:func:`rows_for`), and write its predictions
(:func:`write_predictions`, ``header=False`` and ``append=True`` after the first chunk).
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, UsageError, no_file
from ..format.labels import label_values
from ..spec.data import INDEX_NAMES, Table, align_columns, load_images, load_texts, npz_label_key, read_table
# the one CSV reader's pieces, so that a chunk is parsed exactly as a whole file is
from ..spec.data import _csv_numbers, _finish, _header_kind

PREDICTION_SUFFIXES = (".csv", ".tsv", ".txt", ".npy")


def load_input(path: str | os.PathLike[str], kind: str = "table", text_field: str | None = None) -> Any:
    """User inputs for learnwares of ``kind``: a :class:`~lwdock.spec.data.Table`, an
    N x C x H x W image array (``.npy``/``.npz``), or a list of texts (``.txt`` lines,
    ``.jsonl`` field, ``.csv`` column)."""
    if kind == "image":
        return np.asarray(load_images(path))
    if kind == "text":
        return load_texts(path, field=text_field, column=text_field)
    return read_table(path)


def iter_input(path: str | os.PathLike[str], kind: str = "table", text_field: str | None = None,
               chunk_rows: int = 20_000) -> Iterator[Any]:
    """:func:`load_input` in pieces of at most ``chunk_rows`` rows, so memory stays flat on a large file.

    A CSV/TSV table is read ``chunk_rows`` lines at a time (:func:`read_csv_chunks`); a ``.npy``
    table is memory-mapped and sliced. Other inputs (``.npz``, images, texts) come whole, as one piece.
    """
    if chunk_rows <= 0:
        raise UsageError(f"chunk size must be positive, got {chunk_rows}")
    suffix = Path(path).suffix.lower()
    if kind == "table" and suffix in (".csv", ".tsv", ".txt"):
        yield from read_csv_chunks(path, chunk_rows)
    elif kind == "table" and suffix == ".npy":
        table = read_table(path)  # memory-mapped: a slice is read from disk when it is used
        for start in range(0, table.X.shape[0], chunk_rows):
            yield Table(table.X[start : start + chunk_rows], table.columns, None, table.dtype, table.source)
    else:
        yield load_input(path, kind, text_field)


def read_csv_chunks(path: str | os.PathLike[str], chunk_rows: int = 20_000) -> Iterator[Table]:
    """The rows of a CSV/TSV file as Tables of at most ``chunk_rows`` rows, each with the file's
    column names: the header (and the delimiter) is read once, from the first lines, and every chunk
    is parsed as :func:`lwdock.spec.data.read_table` parses a whole file (same errors, same line
    numbers). A quoted field may not span lines (tables of numbers never need one)."""
    path = Path(path)
    if not path.is_file():
        raise no_file("data file", path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            lines = ((n, ln) for n, ln in enumerate(fh, 1) if ln.strip())  # messages name the file's lines
            head = list(itertools.islice(lines, 2))
            if not head:
                raise InputDataError(f"{path}: the file is empty")
            first = head[0][1]
            delim = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
            head_rows = list(csv.reader([ln for _, ln in head], delimiter=delim))
            kind = _header_kind(head_rows)
            names = [f.strip() for f in head_rows[0]] if kind is not None else None
            offset = 1 if kind is not None else 0
            width = len(names) if names is not None else len(head_rows[0])
            drop_index = names is not None and names[0] in INDEX_NAMES and width > 1
            if drop_index:
                names = names[1:]
            if kind == "numbers":
                names = None
            body = itertools.chain(head[offset:], lines)
            done = 0
            while block := list(itertools.islice(body, chunk_rows)):
                yield _csv_chunk(path, block, delim, width, names, drop_index)
                done += len(block)
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a UTF-8 text file") from None
    if not done:
        raise InputDataError(f"{path}: the file has a header but no rows")


def _csv_chunk(path: Path, block: list[tuple[int, str]], delim: str, width: int, names: list[str] | None,
               drop_index: bool) -> Table:
    """One chunk of a CSV's non-blank lines, each with its line number in the file, as a Table."""
    line_no = [n for n, _ in block]
    rows = list(csv.reader([ln for _, ln in block], delimiter=delim))
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputDataError(f"{path}: line {line_no[min(i, len(line_no) - 1)]} has {len(row)} fields, "
                                 f"expected {width}")
    if drop_index:
        rows = [r[1:] for r in rows]
    n_cols = width - 1 if drop_index else width
    return _finish(_csv_numbers(path, rows, n_cols, names, line_no), str(path), names, None, "float64")


def load_labeled(path: str | os.PathLike[str], label_column: str | int | None = None) -> Table:
    """A table with its labels in ``Table.y`` (raw values: strings for a CSV).

    The label is ``label_column`` (a name or a 0-based index, negative from the end), else a
    ``.npz`` file's label array (``y``), else the last column.
    """
    path = Path(path)
    if label_column is None:
        label_column = npz_label_key(path) if path.suffix.lower() == ".npz" and path.is_file() else None
    table = read_table(path, -1 if label_column is None else label_column)
    if table.X.shape[1] < 1:
        raise InputDataError(f"{path}: a labelled table needs at least one feature column and a label column")
    return table


def rows_for(data: Any, columns: Sequence[str] | None, what: str = "the data") -> tuple[Any, str | None]:
    """``data`` (a Table, a DataFrame, or rows) with its columns in the order ``columns``, and a
    note to say once when the order, not the names, decides (see :func:`lwdock.spec.data.align_columns`)."""
    if data is None:
        return None, None
    if not isinstance(data, Table) and hasattr(data, "columns") and hasattr(data, "to_numpy"):
        data = read_table(data, what=what)
    if isinstance(data, Table):
        return align_columns(data.X, data.columns, columns, what)
    if columns is not None and isinstance(data, np.ndarray) and data.ndim == 2:
        return align_columns(data, None, columns, what)
    return data, None


def prediction_columns(pred: np.ndarray, proba: np.ndarray | None = None,
                       classes: Sequence[str] | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Header and columns of a predictions table: ``prediction`` (or ``prediction_j`` for several
    outputs), then one ``proba_<label>`` column per class."""
    P = np.asarray(pred)
    if P.ndim == 1:
        header, cols = ["prediction"], [P]
    else:
        header, cols = [f"prediction_{j}" for j in range(P.shape[1])], [P[:, j] for j in range(P.shape[1])]
    if proba is not None:
        names = [str(c) for c in classes] if classes is not None and len(classes) == proba.shape[1] else \
            [str(j) for j in range(proba.shape[1])]
        header += [f"proba_{c}" for c in names]
        cols += [proba[:, j] for j in range(proba.shape[1])]
    return header, cols


def write_predictions(path: str | os.PathLike[str], pred: np.ndarray, proba: np.ndarray | None = None,
                      classes: Sequence[str] | None = None, *, header: bool = True, append: bool = False) -> Path:
    """Write ``.npy`` (the predictions, or the probabilities when given) or ``.csv``/``.tsv``.

    ``pred`` holds the labels themselves (strings or numbers); ``classes`` names the probability
    columns. ``append`` adds a chunk's rows to a CSV written before (``header=False``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise UsageError(f"cannot write predictions as {suffix or '(no suffix)'!r}", hint="use .csv or .npy")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give the predictions file to write (-o FILE.csv)")
    if suffix == ".npy":
        if append:
            raise UsageError("predictions in .npy cannot be appended chunk by chunk", hint="write a .csv")
        np.save(path, proba if proba is not None else np.asarray(pred), allow_pickle=False)
        return path
    delim = "\t" if suffix == ".tsv" else ","
    names, cols = prediction_columns(pred, proba, classes)
    with open(path, "a" if append else "w", newline="", encoding="utf-8") as fh:
        if header:
            csv.writer(fh, delimiter=delim, lineterminator="\n").writerow(names)
        if all(np.asarray(c).dtype.kind in "biuf" for c in cols):
            fmts = ["%d" if np.asarray(c).dtype.kind in "iub" else "%.10g" for c in cols]
            table = np.column_stack(cols) if len(cols) > 1 else np.asarray(cols[0]).reshape(-1, 1)
            np.savetxt(fh, table, delimiter=delim, fmt=fmts)
        else:
            text = [_formatted(c) for c in cols]
            csv.writer(fh, delimiter=delim, lineterminator="\n").writerows(zip(*text))
    return path


def _formatted(col: np.ndarray) -> list[str]:
    col = np.asarray(col)
    if col.dtype.kind in "iub":
        return [str(int(v)) for v in col]
    if col.dtype.kind == "f":
        return [f"{v:.10g}" for v in col]
    return [str(v) for v in col]


def labels_for(positions: np.ndarray, classes: Sequence[str] | None) -> np.ndarray:
    """Class positions as the labels they stand for (integers when every label is one)."""
    if classes is None:
        return positions
    return label_values(classes)[np.asarray(positions, dtype=np.int64)]
