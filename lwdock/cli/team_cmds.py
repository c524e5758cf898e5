"""Team-dock commands: ``lwdock migrate`` (docs/team.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._state import JsonOpt, open_dock, output


def migrate(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="The dock to copy into (created or joined with `lwdock init`).")],
    json: JsonOpt = False,
) -> None:
    """Copy every learnware of this dock into DEST, verified by hash (local -> team dock and back)."""
    from ..api import Dock  # the library: see the note in lwdock/cli/__init__.py
    from ..store.migrate import migrate as run

    report = run(open_dock(ctx), Dock.open(dest)).to_dict()
    out = output(ctx, json)
    out.result(report, human=lambda r: out.line(f"copied {r['copied']} learnwares ({r['skipped']} already there), "
                                                f"every copy verified by hash"))


def register(app: typer.Typer) -> None:
    app.command()(migrate)
