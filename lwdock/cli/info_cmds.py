"""``lwdock info``: the dock's settings, what it holds and the search kernel of each feature space."""

from __future__ import annotations

from typing import Any

import typer

from ._state import JsonOpt, open_dock, output


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _kernel_line(k: dict[str, Any]) -> str:
    kern = k["kernel"]
    if kern.get("name") == "rbf":
        what = (f"rbf gamma {kern['gamma']:.4g} on standardised columns ({kern['live_columns']} of {kern['dim']} "
                f"used), built at {kern['built_at_n']} learnwares, id {kern['id']}")
    else:
        what = ", ".join(f"{a} {b}" for a, b in kern.items())
    bad = f", {k['degenerate_specs']} degenerate specs" if k.get("degenerate_specs") else ""
    return f"  {k['space']}: {k['learnwares']} learnwares; {what}{bad}"


def info(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Show the dock: path, settings, counts by status, spec type and dimension, search kernels, disk use."""
    from ..search.dockinfo import dock_info  # the library: see the note in lwdock/cli/__init__.py

    out = output(ctx, json)
    data = dock_info(open_dock(ctx))

    def human(d: dict[str, Any]) -> None:
        out.line(f"dock            {d['path']}")
        out.line(f"layout version  {d['layout_version']}")
        for key, value in d["settings"].items():
            out.line(f"{key:<15} {value if value is not None else '-'}")
        out.line(f"learnwares      {d['learnwares']}")
        for title in ("by_status", "by_spec_type", "by_dimension"):
            if d[title]:
                parts = ", ".join(f"{k}: {v}" for k, v in d[title].items())
                out.line(f"  {title.replace('_', ' ')}: {parts}")
        out.line("search kernels  (chosen by the dock per feature space)" if d["search_kernels"] else
                 "search kernels  none yet (no learnware with a statistical spec)")
        for k in d["search_kernels"]:
            out.line(_kernel_line(k))
        out.line(f"disk use        {_size(d['disk_bytes'])}")

    out.result(data, human=human)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
