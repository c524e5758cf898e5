"""The one output sink. Data goes to stdout; messages go to stderr.

Commands build plain data (dicts, lists) and hand it here; the sink picks the
format: human (rich tables on a terminal, plain text when piped), ``--json``,
or ``--quiet`` (ids only, one per line).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths, without importing numpy here
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


FORMATS = ("table", "tsv", "csv", "json")


@dataclass
class Output:
    """``format``: None picks a rich table on a terminal and TSV when piped; ``header=False``
    drops the header row of TSV/CSV."""

    json: bool = False
    quiet: bool = False
    format: str | None = None
    header: bool = True

    # -- stdout: data ---------------------------------------------------
    def result(self, data: Any, human: Callable[[Any], None] | None = None, ids: Sequence[str] | None = None) -> None:
        """Emit a command's result in the selected format."""
        if self.json or self.format == "json":
            sys.stdout.write(dumps(data) + "\n")
        elif self.quiet:
            for i in ids or ():
                sys.stdout.write(f"{i}\n")
        elif human is not None:
            human(data)
        else:
            sys.stdout.write(dumps(data) + "\n")
        sys.stdout.flush()

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None,
              *, file: TextIO | None = None, id_columns: Sequence[str] = ("id",)) -> None:
        """A table (stdout unless ``file``): rich on a terminal, else TSV (or ``--format``).

        Ids are whole unless the table is drawn for a person on a terminal; there they are
        cut to a prefix that is unique among the rows (12 hex digits at least).
        """
        stream = file or sys.stdout
        fmt = self.format or ("table" if stream.isatty() else "tsv")
        if fmt == "table":
            if stream.isatty():
                rows = _short_ids(rows, [c for c in id_columns if c in columns])
            _rich_table(rows, columns, title, stream)
        elif fmt == "csv":
            writer = csv.writer(stream, lineterminator="\n")
            if self.header:
                writer.writerow(columns)
            writer.writerows([_cell(r.get(c), exact=True) for c in columns] for r in rows)
        else:
            if self.header:
                stream.write("\t".join(columns) + "\n")
            for r in rows:
                stream.write("\t".join(_cell(r.get(c), exact=True).replace("\t", " ") for c in columns) + "\n")

    def line(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    # -- stderr: messages -------------------------------------------------
    def info(self, msg: str) -> None:
        if not self.quiet:
            sys.stderr.write(msg + "\n")

    def warn(self, msg: str) -> None:
        sys.stderr.write(f"warning: {msg}\n")

    def error(self, msg: str) -> None:
        sys.stderr.write(f"error: {msg}\n")


def _rich_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None, stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c, no_wrap=c == "id")
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in columns])
    Console(file=stream).print(table)


def unique_prefix_length(ids: Sequence[str], minimum: int = 12) -> int:
    """The shortest prefix length (at least ``minimum``) that tells all ``ids`` apart."""
    distinct = sorted(set(ids))
    n = minimum
    for a, b in zip(distinct, distinct[1:]):
        common = len(os.path.commonprefix([a, b]))
        n = max(n, common + 1)
    return n


def _short_ids(rows: Sequence[dict[str, Any]], id_columns: Sequence[str]) -> list[dict[str, Any]]:
    out = [dict(r) for r in rows]
    for c in id_columns:
        values = [r[c] for r in out if isinstance(r.get(c), str)]
        n = unique_prefix_length(values)
        for r in out:
            if isinstance(r.get(c), str):
                r[c] = r[c][:n]
    return out


def _cell(value: Any, exact: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}" if exact else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
