"""Global CLI state (from the root callback) and shared option types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .. import progress
from ..config import resolve_dock_dir
from ..errors import UsageError
from ._output import FORMATS, Output

if TYPE_CHECKING:
    from ..api import Dock


@dataclass
class State:
    dock: Optional[Path] = None
    json: bool = False
    quiet: bool = False
    debug: bool = False


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print ids only, one per line.")]


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def output(ctx: typer.Context, json: bool = False, quiet: bool = False, fmt: Optional[str] = None,
           header: bool = True) -> Output:
    """The sink for this command: per-command flags add to the global ones."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    st = state(ctx)
    use_json = json or st.json or fmt == "json"
    use_quiet = (quiet or st.quiet) and not use_json
    if use_json or use_quiet:
        progress.disable()
    return Output(json=use_json, quiet=use_quiet, format=fmt, header=header)


def open_dock(ctx: typer.Context, create: bool = False) -> Dock:
    """Open the dock chosen by --dock, then LWDOCK_HOME, then the platform default."""
    from ..api import Dock  # the library: see the note in lwdock/cli/__init__.py

    path = resolve_dock_dir(state(ctx).dock)
    return Dock.init(path) if create else Dock.open(path)
