"""Column names: where they are read from, how they are normalised, how they are embedded.

Names carry the heterogeneous method: two columns are candidates for the same feature when
their names mean the same thing. Names are normalised (``concave points_se`` and
``ConcavePointsSe`` both read ``concave points standard error``: separators and camelCase
split, lower case, common abbreviations expanded) and embedded with the offline MiniLM
sentence embedder (:mod:`lwdock.spec.embedders`, the ``text`` extra). The hashing embedder is
refused here: it only sees shared words, and it finds half the true column pairs MiniLM finds
(recall 0.49 vs 0.94 on the housing scenario, docs/heterogeneous.md).

Where names come from (one place each, so the schema work of issue 14 can swap them):
:func:`learnware_names` for a learnware (semantic ``Input.Description``, then the spec JSON's
``feature_names``, then the packed hetero stats) and :func:`table_column_names` for a user's
file (its CSV header).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..records import Semantic
from ..spec.embedders import DEFAULT_EMBEDDER, INSTALL_HINT, MiniLMEmbedder, get_embedder

NAME_EMBEDDER = DEFAULT_EMBEDDER  # the only embedder good enough for column names
MAX_NAME_CHARS = 200  # longer names are cut before embedding (MiniLM reads 256 word pieces)

_SPLIT = re.compile(r"[_\-./:|]+|(?<=[a-z])(?=[A-Z])")
_SPACES = re.compile(r"\s+")

# Abbreviations common in column names, expanded before embedding: MiniLM does not know that
# "se" is a standard error (without the expansion, breast-cancer matching recall fell from 0.97
# to 0.79). A word is replaced only when it is a whole token.
ABBREVIATIONS = {
    "se": "standard error", "sd": "standard deviation", "std": "standard deviation",
    "stdev": "standard deviation", "avg": "average", "pct": "percent", "perc": "percent",
    "num": "number", "nr": "number", "cnt": "count", "qty": "quantity", "amt": "amount",
    "temp": "temperature", "lat": "latitude", "lon": "longitude", "lng": "longitude", "yr": "year",
    "yrs": "years", "hh": "household", "pop": "population", "dist": "distance", "min": "minimum",
    "max": "maximum", "med": "median", "inc": "income", "approx": "approximate", "dept": "department",
}


def normalise_name(name: str) -> str:
    """What the embedder reads: 'concave points_se' -> 'concave points standard error'."""
    s = _SPLIT.sub(" ", str(name)[:MAX_NAME_CHARS])
    words = _SPACES.sub(" ", s).strip().lower().split(" ")
    return " ".join(ABBREVIATIONS.get(w, w) for w in words if w)


def require_name_embedder() -> Any:
    """The MiniLM embedder, or a clear error saying why heterogeneous search cannot run."""
    if not MiniLMEmbedder.available():
        raise UsageError(
            "heterogeneous search and reuse need the MiniLM name embedder, which is not installed",
            hint=INSTALL_HINT + "; the hashing-384 embedder is not good enough for column names "
            "(it finds about half the matching columns)",
        )
    return get_embedder(NAME_EMBEDDER)


def name_embedder_available() -> bool:
    return MiniLMEmbedder.available()


# -- where names come from ---------------------------------------------------------------


def clean_names(names: Any, dim: int | None) -> list[str] | None:
    """``names`` as a list of ``dim`` non-empty strings, or None when that is not what they are."""
    if not isinstance(names, (list, tuple)) or not names:
        return None
    out = [str(n).strip() for n in names]
    if any(not n for n in out) or (dim is not None and len(out) != dim):
        return None
    return out


def learnware_names(semantic: Semantic, dim: int | None, spec_doc: Mapping[str, Any] | None = None,
                    packed: Sequence[str] | None = None) -> list[str] | None:
    """A learnware's column names in column order, or None unless every column is named.

    Read from the semantic ``Input.Description`` ({"0": name, ...}, every column described),
    else the table spec file's ``feature_names`` (the schema contract), else the names packed
    with its hetero stats (``lwdock pack`` from a CSV with a header).
    """
    dim = dim if dim is not None else semantic.input_dim
    described = semantic.input_names
    if dim and len(described) == dim and set(described) == set(range(dim)):
        found = clean_names([described[i] for i in range(dim)], dim)
        if found:
            return found
    if spec_doc is not None:
        found = clean_names(spec_doc.get("feature_names"), dim)
        if found:
            return found
    return clean_names(list(packed) if packed is not None else None, dim)


def header_fields(first_line: str) -> list[str] | None:
    """The fields of a CSV header line, or None when the line is data (every field a number)."""
    delim = "\t" if "\t" in first_line else ";" if ";" in first_line and "," not in first_line else ","
    fields = next(csv.reader(io.StringIO(first_line), delimiter=delim), [])
    fields = [f.strip() for f in fields]
    return None if all(_is_number(f) for f in fields) else fields


def table_column_names(path: str | Path) -> list[str] | None:
    """The column names of a user's table file: its CSV header; None for .npy/.npz or no header."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        return None
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = next((ln for ln in fh if ln.strip()), "")
    except (OSError, UnicodeDecodeError):
        return None
    fields = header_fields(first.rstrip("\r\n"))
    return clean_names(fields, None) if fields else None


def _is_number(field: str) -> bool:
    if field == "":
        return True
    try:
        float(field)
    except ValueError:
        return False
    return True
