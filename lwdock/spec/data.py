"""Reading user data files: tables (``.npy``, ``.npz``, ``.csv``), images and texts.

:func:`read_table` is the one reader of user tables (spec fitting, pack, search, reuse and
predict all use it): it returns a :class:`Table` with the float64 rows, the column names
where the data has them (a CSV header, a ``.npz`` ``feature_names`` array, a structured
``.npy`` array, a DataFrame's columns) and the source dtype, and takes a label column out
before the rest is read as numbers. :func:`align_columns` puts a named table's columns in a
learnware's order. ``.npy`` files are memory-mapped, so a large float64 file is not read into
memory at once; pickled object arrays are refused. Empty CSV fields read as NaN (the spec
fitter fills them).

A CSV header is detected when a field of the first row is not a number while the row below
has a number there, or when the first row is ``0,1,...,d-1`` (pandas' default header; such
numbers are not names, so the table has none). A first header field that is empty (pandas'
row index) drops that column.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, UsageError, no_file

logger = logging.getLogger("lwdock")

NPZ_KEYS = ("X", "x", "data", "features")
NPZ_NAME_KEYS = ("feature_names", "columns")
NPZ_LABEL_KEYS = ("y", "label", "labels", "target")
INDEX_NAMES = ("", "Unnamed: 0")  # the first header field pandas writes above its row index


@dataclass(frozen=True)
class Table:
    """A user table: ``X`` (n x d float64), its column names (None when it has none), the label
    column's raw values when one was asked for, and the dtype the numbers were stored in."""

    X: np.ndarray
    columns: tuple[str, ...] | None = None
    y: np.ndarray | None = None
    dtype: str = "float64"
    source: str = "data"

    @property
    def schema(self) -> dict[str, Any]:
        """What a learnware records about its input: dimension, names, dtype."""
        return {"dimension": int(self.X.shape[1]), "columns": list(self.columns) if self.columns else None,
                "dtype": self.dtype}


def _is_frame(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def read_table(source: Any, label_column: str | int | None = None, *, what: str | None = None) -> Table:
    """The rows of a ``.npy``/``.npz``/``.csv`` file, a DataFrame or an array, as a :class:`Table`.

    ``label_column`` (a column name, or a 0-based index; negative counts from the end) is taken
    out of the table into ``Table.y`` (raw values: strings for a CSV). A ``.npz`` file may hold
    its labels as ``y`` instead; ``label_column`` then names that array.
    """
    if _is_frame(source):
        table = _read_frame(source, label_column, what or "data")
    elif isinstance(source, np.ndarray):
        table = _from_array(source, label_column, what or "data")
    else:
        path = Path(source)
        if not path.is_file():
            raise no_file("data file", path)
        suffix = path.suffix.lower()
        if suffix == ".npy":
            table = _from_array(_load_npy(path), label_column, str(path))
        elif suffix == ".npz":
            table = _read_npz(path, label_column)
        elif suffix in (".csv", ".tsv", ".txt"):
            table = _read_csv(path, label_column)
        else:
            raise InputDataError(f"{path}: unsupported data format {suffix or '(none)'!r}",
                                 hint="use .npy, .npz or .csv")
    return table


def load_data(path: str | Path) -> np.ndarray:
    """Return the file's rows as an ``n x d`` float64 array (trailing dimensions flattened)."""
    return read_table(path).X


# -- arrays and DataFrames ------------------------------------------------------------


def _finish(arr: np.ndarray, src: str, columns: Sequence[str] | None = None, y: np.ndarray | None = None,
            dtype: str | None = None) -> Table:
    """Checks shared by every source: numeric, at least one row and one column; float64 rows."""
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{src}: data must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise InputDataError(f"{src}: the data has no rows")
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 1 else arr.reshape(-1, 1)
    if arr.shape[1] == 0:
        raise InputDataError(f"{src}: the data has no columns")
    cols = tuple(columns) if columns else None
    if cols is not None:
        if len(cols) != arr.shape[1]:
            raise InputDataError(f"{src}: {len(cols)} column names for {arr.shape[1]} columns")
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise InputDataError(f"{src}: column names repeat: {', '.join(dup)}", hint="give every column its own name")
    X = arr if arr.dtype == np.float64 else arr.astype(np.float64)
    return Table(X, cols, y, dtype or str(arr.dtype), src)


def _label_index(label: str | int, columns: Sequence[str] | None, width: int, src: str) -> int:
    """The position of the label column: its name in ``columns``, else a 0-based index."""
    if columns is not None and str(label) in columns:
        return list(columns).index(str(label))
    try:
        idx = int(label)
    except (TypeError, ValueError):
        raise UsageError(
            f"label column {label!r} is not in {src}",
            hint=f"columns: {', '.join(columns)}" if columns else "the data has no column names; give a column index",
        ) from None
    if not -width <= idx < width:
        raise UsageError(f"label column index {idx} is out of range for {width} columns")
    return idx % width


def _default_names(columns: Sequence[Any]) -> bool:
    """``0, 1, ..., d-1``: pandas' default column labels, which name nothing."""
    return [str(c).strip() for c in columns] == [str(i) for i in range(len(columns))]


def _from_array(arr: np.ndarray, label: str | int | None, src: str, names: Sequence[str] | None = None) -> Table:
    """A plain array (``names`` for its columns, if known) or a structured one (its fields are the columns)."""
    if arr.dtype.names:
        return _from_fields(arr, label, src)
    if label is None:
        return _finish(arr, src, names)
    arr2 = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    idx = _label_index(label, names, arr2.shape[1], src)
    keep = [j for j in range(arr2.shape[1]) if j != idx]
    return _finish(np.ascontiguousarray(arr2[:, keep]), src, [names[j] for j in keep] if names else None,
                   np.asarray(arr2[:, idx]), str(arr.dtype))


def _from_fields(arr: np.ndarray, label: str | int | None, src: str) -> Table:
    names = list(arr.dtype.names)
    fields = [arr[n].reshape(len(arr), -1) if arr[n].ndim > 1 else arr[n] for n in names]
    y = None
    if label is not None:
        idx = _label_index(label, names, len(names), src)
        y = np.asarray(fields.pop(idx))
        names.pop(idx)
    bad = next((n for n, f in zip(names, fields) if f.dtype.kind not in "biuf"), None)
    if bad is not None:
        raise InputDataError(f"{src}: field {bad!r} is not numeric", hint=_label_hint(bad))
    arr = np.column_stack(fields) if fields else np.empty((len(arr), 0))
    return _finish(arr, src, names, y)


def _read_frame(df: Any, label: str | int | None, src: str) -> Table:
    names = [str(c) for c in df.columns]
    named = not _default_names(list(df.columns))
    y = None
    keep = list(range(len(names)))
    if label is not None:
        idx = _label_index(label, names if named else None, len(names), src)
        y = df.iloc[:, idx].to_numpy()
        y = y.astype(str) if y.dtype == object else y  # pandas keeps strings as objects; never pass objects on
        keep.remove(idx)
    kinds = [np.dtype(getattr(t, "numpy_dtype", t)) if _np_dtype(t) else None for t in df.dtypes]
    bad = next((names[j] for j in keep if kinds[j] is None or kinds[j].kind not in "biuf"), None)
    if bad is not None:
        raise InputDataError(f"{src}: column {bad!r} is not numeric", hint=_label_hint(bad))
    X = df.iloc[:, keep].to_numpy(dtype=np.float64, na_value=np.nan) if keep else np.empty((len(df), 0))
    dtype = str(np.result_type(*[kinds[j] for j in keep])) if keep else "float64"
    return _finish(X, src, [names[j] for j in keep] if named else None, y, dtype)


def _np_dtype(t: Any) -> bool:
    try:
        np.dtype(getattr(t, "numpy_dtype", t))
    except TypeError:
        return False
    return True


def _label_hint(column: str) -> str:
    return (f"text columns cannot be features; if {column!r} is the label, name it as the label column "
            f"(pack and reuse --label-column {column})")


# -- files ---------------------------------------------------------------------------


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputDataError(f"{path}: not a numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read .npy file ({exc})") from None


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read .npz file ({exc})") from None


def npz_label_key(path: str | Path) -> str | None:
    """The name of the label array of a ``.npz`` file (``y``, ``label``, ...), or None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return next((k for k in NPZ_LABEL_KEYS if k in z.files), None)
    except (ValueError, OSError, EOFError):
        return None


def _npz_data_key(path: Path, arrays: dict[str, np.ndarray], label: str | int | None = None) -> str:
    """The array holding the data: the only one, ``X`` (or x, data, features), or the only one that
    is neither names nor labels."""
    if not arrays:
        raise InputDataError(f"{path}: the .npz file holds no arrays")
    meta = set(NPZ_NAME_KEYS) | set(NPZ_LABEL_KEYS) | ({str(label)} if label is not None else set())
    data_keys = [k for k in arrays if k not in meta]
    key = next((k for k in NPZ_KEYS if k in arrays), None)
    if key is None:
        key = data_keys[0] if len(data_keys) == 1 else (next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise InputDataError(f"{path}: the .npz file holds several arrays ({', '.join(arrays)}) and none is named X",
                             hint="save the features under the name 'X' (and their names as 'feature_names')")
    return key


def _read_npz(path: Path, label: str | int | None) -> Table:
    arrays = _npz_arrays(path)
    key = _npz_data_key(path, arrays, label)
    names = _npz_names(path, arrays, arrays[key])
    if label is None or str(label) == key or str(label) not in arrays:
        return _from_array(arrays[key], label, str(path), names)
    table = _from_array(arrays[key], None, str(path), names)  # the labels are an array of their own
    y = np.asarray(arrays[str(label)])
    if y.ndim != 1 or len(y) != table.X.shape[0]:
        raise InputDataError(f"{path}: {str(label)!r} must hold one label per row ({table.X.shape[0]})")
    return Table(table.X, table.columns, y, table.dtype, table.source)


def _npz_names(path: Path, arrays: dict[str, np.ndarray], X: np.ndarray) -> list[str] | None:
    key = next((k for k in NPZ_NAME_KEYS if k in arrays), None)
    if key is None:
        return None
    names = arrays[key]
    width = int(np.prod(X.shape[1:])) if X.ndim > 1 else 1
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != width:
        raise InputDataError(f"{path}: {key!r} must be {width} strings, one per column of the data")
    return [str(n) for n in names]


def _is_number(field: str) -> bool:
    f = field.strip()
    if f == "":
        return True  # missing value
    try:
        float(f)
    except ValueError:
        return False
    return True


def _header_kind(rows: list[list[str]]) -> str | None:
    """"names", "numbers" (pandas' default 0..d-1 header) or None (the first row is data)."""
    first = [f.strip() for f in rows[0]]
    if len(rows) == 1:
        return "names" if not all(_is_number(f) for f in first) else None
    second = rows[1]
    if any(not _is_number(f) and j < len(second) and _is_number(second[j]) and second[j].strip()
           for j, f in enumerate(first)):
        return "names"
    width = len(first)
    if width >= 3 and (_default_names(first) or (first[0] == "" and _default_names(first[1:]))):
        return "numbers"
    return None


def _read_csv(path: Path, label: str | int | None) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a UTF-8 text file") from None
    numbered = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not numbered:
        raise InputDataError(f"{path}: the file is empty")
    line_no, lines = [n for n, _ in numbered], [ln for _, ln in numbered]  # messages name the file's lines
    first = lines[0]
    delim = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    kind = _header_kind(rows)
    names: list[str] | None = None
    offset = 0
    if kind is not None:
        names, rows, offset = [f.strip() for f in rows[0]], rows[1:], 1
        if not rows:
            raise InputDataError(f"{path}: the file has a header but no rows")
    width = len(names) if names is not None else len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputDataError(f"{path}: line {_line(line_no, i + offset)} has {len(row)} fields, expected {width}")
    if names is not None and names[0] in INDEX_NAMES and width > 1:
        logger.info("%s: the first column has no name (a row index, as pandas writes it): it is left out", path.name)
        names, rows, width = names[1:], [r[1:] for r in rows], width - 1
    if kind == "numbers":
        names = None
    y = None
    if label is not None:
        idx = _label_index(label, names, width, str(path))
        y = np.array([r[idx].strip() for r in rows])
        rows = [r[:idx] + r[idx + 1:] for r in rows]
        names = names[:idx] + names[idx + 1:] if names is not None else None
        width -= 1
    return _finish(_csv_numbers(path, rows, width, names, line_no[offset:]), str(path), names, y, "float64")


def _line(line_no: list[int], i: int) -> int:
    """The file's line number (1-based, header and blank lines counted) of non-blank line ``i``;
    past the end (a quoted field that spans lines) the last one."""
    return line_no[min(i, len(line_no) - 1)]


def _csv_numbers(path: Path, rows: list[list[str]], width: int, names: list[str] | None,
                 line_no: list[int]) -> np.ndarray:
    try:  # fast path; the loop below handles empty fields and names bad values
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        pass
    out = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        try:
            out[i] = [float(f) if f.strip() else np.nan for f in row]
        except ValueError:
            j = next(j for j, f in enumerate(row) if not _is_number(f))
            col = names[j] if names is not None else f"{j + 1}"
            raise InputDataError(f"{path}: line {_line(line_no, i)}, column {col}: non-numeric value {row[j].strip()!r}",
                                 hint=_label_hint(col)) from None
    return out


# -- column alignment -----------------------------------------------------------------


def align_columns(X: np.ndarray, have: Sequence[str] | None, want: Sequence[str] | None,
                  what: str = "the data") -> tuple[np.ndarray, str | None]:
    """``X`` (columns named ``have``) with its columns in the order ``want``, and a note to say once.

    With both names, columns are matched by name: a missing or an extra column is an
    InputDataError listing them. When either side has no names the order is kept, and the
    note says so (None when neither side names its columns).
    """
    if want is None or have is None:
        if want is None and have is None:
            return X, None
        if have is None:
            return X, (f"{what} has no column names: its {X.shape[1]} columns are taken in the learnwares' order "
                       f"({_short(want)})")
        return X, f"the learnwares do not name their columns: {what}'s columns are taken in file order"
    have, want = list(have), list(want)
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"extra {', '.join(extra)}"] if extra else [])
        raise InputDataError(f"{what}'s columns do not match the learnwares' columns: {'; '.join(parts)}",
                             hint=f"the learnwares take {len(want)} columns: {_short(want, 12)}")
    if have == want:
        return X, None
    return np.ascontiguousarray(X[:, [have.index(c) for c in want]]), None


def named_columns(dim: int | None, names: Mapping[int, str]) -> list[str] | None:
    """A learnware's column names in order (its semantic ``Input.Description``), or None unless it
    names each of its ``dim`` columns once."""
    if not dim or not all(i in names for i in range(dim)):
        return None
    columns = [str(names[i]) for i in range(dim)]
    return columns if len(set(columns)) == dim else None


def common_order(have: Sequence[str], orders: Iterable[Sequence[str] | None]) -> list[str] | None:
    """The column order most learnwares use among those taking exactly the columns ``have``
    (in any order), or None when none does. Ties go to the first seen."""
    wanted = set(have)
    counts: dict[tuple[str, ...], int] = {}
    for order in orders:
        if order and len(order) == len(have) and set(order) == wanted:
            key = tuple(order)
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    return list(max(counts, key=lambda k: counts[k]))


def table_in_learnware_order(source: Any, orders: Callable[[], Iterable[Sequence[str] | None]],
                             what: str = "the data") -> np.ndarray:
    """The rows of a user table with its named columns put in the order the learnwares take them
    (for a search, where each learnware's RKME is over its own column order). ``orders`` is
    called only when the table names its columns. Unnamed tables, and tables whose names no
    learnware takes, keep their order; that is said once on stderr."""
    table = read_table(source, what=what)
    if table.columns is None:
        logger.info("%s has no column names: its columns are compared in file order", what)
        return table.X
    want = common_order(table.columns, orders())
    if want is None:
        logger.info("no learnware names the columns of %s (%s): they are compared in file order",
                    what, _short(table.columns))
        return table.X
    return align_columns(table.X, table.columns, want, what)[0]


def _short(names: Sequence[str], n: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


# -- images and texts -----------------------------------------------------------------


def load_images(path: str | Path) -> np.ndarray:
    """An N x C x H x W numeric array from ``.npy`` (memory-mapped) or ``.npz`` (its array, or ``X``).

    A 3-D N x H x W array is read as grey images (C = 1).
    """
    path = Path(path)
    if not path.is_file():
        raise no_file("image file", path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(path)
    elif suffix == ".npz":
        arrays = _npz_arrays(path)
        arr = arrays[_npz_data_key(path, arrays)]
    else:
        raise InputDataError(f"{path}: unsupported image format {suffix or '(none)'!r}",
                             hint="save the images as an N x C x H x W array in .npy or .npz")
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{path}: images must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or min(arr.shape) == 0:
        raise InputDataError(f"{path}: images must be an N x C x H x W array, got shape {arr.shape}")
    return arr


def load_texts(path: str | Path, field: str | None = None, column: str | None = None) -> list[str]:
    """Texts from ``.txt`` (one per non-empty line), ``.jsonl`` (``field``) or ``.csv`` (``column``, by header name)."""
    path = Path(path)
    if not path.is_file():
        raise no_file("text file", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a UTF-8 text file") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        if not field:
            raise InputDataError(f"{path}: give the JSON field that holds the text (--field)")
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise InputDataError(f"{path}: line {i} is not valid JSON") from None
            value = rec.get(field) if isinstance(rec, dict) else None
            if not isinstance(value, str):
                raise InputDataError(f"{path}: line {i} has no string field {field!r}")
            out.append(value)
    elif suffix in (".csv", ".tsv"):
        if not column:
            raise InputDataError(f"{path}: give the CSV column that holds the text (--column)")
        delim = "\t" if suffix == ".tsv" else ","
        rows = list(csv.reader(io.StringIO(text), delimiter=delim))
        if not rows or column not in rows[0]:
            raise InputDataError(f"{path}: no column {column!r} in the header",
                                 hint=f"columns: {', '.join(rows[0]) if rows else '(none)'}")
        j = rows[0].index(column)
        out = [r[j] for r in rows[1:] if len(r) > j and r[j].strip()]
    else:
        out = [ln for ln in text.splitlines() if ln.strip()]
    if not out:
        raise InputDataError(f"{path}: no text found")
    return out
