"""Reading user data files (``.npy``, ``.npz``, ``.csv``) into a float64 table.

``.npy`` files are memory-mapped, so a large float64 file is not read into
memory at once; pickled object arrays are refused. A CSV header is detected:
the first row is a header when one of its fields is not a number. Empty
fields read as NaN (the spec fitter fills them).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..errors import InputDataError, no_file

NPZ_KEYS = ("X", "x", "data", "features")


def load_data(path: str | Path) -> np.ndarray:
    """Return the file's rows as an ``n x d`` float64 array (trailing dimensions flattened)."""
    path = Path(path)
    if not path.is_file():
        raise no_file("data file", path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(path)
    elif suffix == ".npz":
        arr = _load_npz(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        arr = _load_csv(path)
    else:
        raise InputDataError(f"{path}: unsupported data format {suffix or '(none)'!r}", hint="use .npy, .npz or .csv")
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{path}: data must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise InputDataError(f"{path}: the data has no rows")
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 1 else arr.reshape(-1, 1)
    if arr.shape[1] == 0:
        raise InputDataError(f"{path}: the data has no columns")
    return arr if arr.dtype == np.float64 else arr.astype(np.float64)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputDataError(f"{path}: not a numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read .npy file ({exc})") from None


def _load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if not keys:
                raise InputDataError(f"{path}: the .npz file holds no arrays")
            key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
            if key is None:
                raise InputDataError(
                    f"{path}: the .npz file holds several arrays ({', '.join(keys)}) and none is named X",
                    hint="save the features under the name 'X'",
                )
            return z[key]
    except InputDataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"{path}: cannot read .npz file ({exc})") from None


def _is_number(field: str) -> bool:
    f = field.strip()
    if f == "":
        return True  # missing value
    try:
        float(f)
    except ValueError:
        return False
    return True


def _load_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a UTF-8 text file") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputDataError(f"{path}: the file is empty")
    first = lines[0]
    delim = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)
    rows = list(reader)
    header = 0
    if not all(_is_number(f) for f in rows[0]):
        header = 1
        rows = rows[1:]
        if not rows:
            raise InputDataError(f"{path}: the file has a header but no rows")
    try:  # fast path; the loop below handles empty fields and names bad values
        return np.loadtxt(io.StringIO("\n".join(lines[header:])), delimiter=delim, dtype=np.float64, ndmin=2)
    except ValueError:
        pass
    width = len(rows[0])
    out = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InputDataError(f"{path}: line {i + 1 + header} has {len(row)} fields, expected {width}")
        try:
            out[i] = [float(f) if f.strip() else np.nan for f in row]
        except ValueError:
            bad = next(f for f in row if not _is_number(f))
            raise InputDataError(f"{path}: line {i + 1 + header} has a non-numeric value {bad.strip()!r}") from None
    return out


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
        arr = _load_npz(path)
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
