"""The one output sink. Data goes to stdout; messages go to stderr.

Commands build plain data (dicts, lists) and hand it here; the sink picks the
format: human (rich tables on a terminal, plain text when piped), ``--json``,
or ``--quiet`` (ids only, one per line).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths, without importing numpy here
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


@dataclass
class Output:
    json: bool = False
    quiet: bool = False

    # -- stdout: data ---------------------------------------------------
    def result(self, data: Any, human: Callable[[Any], None] | None = None, ids: Sequence[str] | None = None) -> None:
        """Emit a command's result in the selected format."""
        if self.json:
            sys.stdout.write(dumps(data) + "\n")
        elif self.quiet:
            for i in ids or ():
                sys.stdout.write(f"{i}\n")
        elif human is not None:
            human(data)
        else:
            sys.stdout.write(dumps(data) + "\n")
        sys.stdout.flush()

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
        """Human table on stdout: rich on a terminal, tab-separated when piped."""
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.table import Table

            table = Table(title=title)
            for c in columns:
                table.add_column(c)
            for r in rows:
                table.add_row(*[_cell(r.get(c)) for c in columns])
            Console().print(table)
        else:
            sys.stdout.write("\t".join(columns) + "\n")
            for r in rows:
                sys.stdout.write("\t".join(_cell(r.get(c)) for c in columns) + "\n")

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


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)
