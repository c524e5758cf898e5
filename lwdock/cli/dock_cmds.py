"""Dock commands: init, submit, list, show, alias, export, remove, recheck, doctor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._options import (
    DataTypeOpt,
    DescriptionOpt,
    InputDimOpt,
    LibraryOpt,
    LicenseOpt,
    NameOpt,
    OutputDimOpt,
    ScenarioOpt,
    SemanticFileOpt,
    TaskOpt,
    semantic_flags,
)
from ._state import JsonOpt, QuietOpt, open_dock, output, state

RefArg = Annotated[str, typer.Argument(help="Learnware id, unique id prefix (>= 4 hex digits) or alias.")]
EnvManagerOpt = Annotated[
    str, typer.Option("--env-manager", help="venv (isolated, default) or none (trusted: current interpreter).")
]


def _brief(e: dict[str, Any]) -> dict[str, Any]:
    from ..format.semantic import value

    s = e.get("semantic", {})
    dims = [sp.get("dim") for sp in e.get("specs", []) if sp.get("dim") is not None]
    return {
        "id": e["id"],
        "alias": e.get("alias"),
        "name": value(s, "Name"),
        "data": value(s, "Data"),
        "task": value(s, "Task"),
        "status": e.get("status"),
        "dim": dims[0] if dims else None,
        "created": e.get("created"),
    }


def init(
    ctx: typer.Context,
    gamma: Annotated[float, typer.Option("--gamma", help="RBF kernel gamma shared by every spec in this dock.")] = 0.1,
    json: JsonOpt = False,
) -> None:
    """Create a dock (idempotent)."""
    from ..config import resolve_dock_dir
    from ..store.dock import Dock

    dock = Dock.init(resolve_dock_dir(state(ctx).dock), gamma=gamma)
    out = output(ctx, json)
    data = {"dock": str(dock.path), **dock.settings}
    out.result(data, human=lambda d: out.line(f"dock ready at {d['dock']} (gamma {d['gamma']})"))


def submit(
    ctx: typer.Context,
    zips: Annotated[list[Path], typer.Argument(help="Learnware zip file(s).")],
    semantic_file: SemanticFileOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    data_type: DataTypeOpt = None,
    task: TaskOpt = None,
    library: LibraryOpt = None,
    scenario: ScenarioOpt = None,
    license: LicenseOpt = None,
    input_dim: InputDimOpt = None,
    output_dim: OutputDimOpt = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Human alias (one zip only).")] = None,
    no_run: Annotated[bool, typer.Option("--no-run", help="Do not run the model: status semantic-only.")] = False,
    env_manager: EnvManagerOpt = "venv",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Succeed if the learnware is already there.")] = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check learnware zips and store them. Each zip is all or nothing."""
    from ..errors import UsageError

    if alias and len(zips) > 1:
        raise UsageError("--alias needs exactly one zip")
    from ..format import semantic as sem

    semantic = sem.load(semantic_file) if semantic_file is not None else None
    flags = semantic_flags(
        name=name, description=description, data_type=data_type, task=task, library=library,
        scenario=scenario, license=license, input_dim=input_dim, output_dim=output_dim,
    )  # fmt: skip
    dock = open_dock(ctx)
    out = output(ctx, json, quiet)
    results = []
    for z in zips:
        entry = dock.submit(
            z, semantic, semantic_flags=flags, alias=alias, run_model=not no_run, env_manager=env_manager,
            exist_ok=exist_ok,
        )  # fmt: skip
        out.info(f"submitted {z} as {entry['id'][:12]} ({entry['status']})")
        results.append(_brief(entry))
    out.result(
        results if len(results) != 1 else results[0],
        human=lambda _: [out.line(r["id"]) for r in results],
        ids=[r["id"] for r in results],
    )


def list_cmd(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option("--status", help="usable, semantic-only or invalid.")] = None,
    data_type: DataTypeOpt = None,
    task: TaskOpt = None,
    library: LibraryOpt = None,
    scenario: Annotated[Optional[str], typer.Option("--scenario", help="Scenario tag.")] = None,
    license: LicenseOpt = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Substring of name, description or alias.")] = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List learnwares, newest first."""
    dock = open_dock(ctx)
    rows = [
        _brief(e)
        for e in dock.list(
            status=status, data_type=data_type, task=task, library=library, scenario=scenario, license=license, name=name
        )
    ]
    out = output(ctx, json, quiet)

    def human(data: list[dict[str, Any]]) -> None:
        shown = [{**r, "id": r["id"][:12]} for r in data]
        out.table(shown, ["id", "alias", "name", "data", "task", "dim", "status", "created"])
        out.info(f"{len(data)} learnware(s)")

    out.result(rows, human=human, ids=[r["id"] for r in rows])


def show(ctx: typer.Context, ref: RefArg, json: JsonOpt = False) -> None:
    """Show one learnware: semantic spec, specs, status and check report."""
    entry = open_dock(ctx).get(ref, full=True)
    out = output(ctx, json)

    def human(e: dict[str, Any]) -> None:
        b = _brief(e)
        for k in ("id", "alias", "name", "data", "task", "status", "created"):
            out.line(f"{k:<12}{b[k] if b[k] is not None else '-'}")
        out.line(f"{'specs':<12}" + ", ".join(f"{s['kind']} (dim {s.get('dim', '?')})" for s in e.get("specs", [])))
        out.line(f"{'requires':<12}" + (", ".join(e.get("requirements") or []) or "-"))
        for c in (e.get("check") or {}).get("checks", []):
            out.line(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['name']}: {c.get('reason', '')}")

    out.result(entry, human=human, ids=[entry["id"]])


def alias(
    ctx: typer.Context,
    ref: RefArg,
    name: Annotated[Optional[str], typer.Argument(help="New alias; omit with --clear.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the alias.")] = False,
    json: JsonOpt = False,
) -> None:
    """Set or clear a learnware's human alias."""
    from ..errors import UsageError

    if (name is None) == (not clear):
        raise UsageError("give an alias, or --clear")
    entry = open_dock(ctx).set_alias(ref, None if clear else name)
    out = output(ctx, json)
    out.result(_brief(entry), human=lambda b: out.line(f"{b['id'][:12]} alias {b['alias'] or '(none)'}"))


def export(
    ctx: typer.Context,
    ref: RefArg,
    dest: Annotated[Path, typer.Option("-o", "--output", help="Destination zip file or directory.")],
    json: JsonOpt = False,
) -> None:
    """Write a learnware's zip (byte-identical) to a file."""
    path = open_dock(ctx).export(ref, dest)
    out = output(ctx, json)
    out.result({"path": str(path)}, human=lambda d: out.line(d["path"]))


def remove(
    ctx: typer.Context,
    refs: Annotated[list[str], typer.Argument(help="Learnware ids, prefixes or aliases.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove learnwares from the dock."""
    import sys

    from ..errors import UsageError

    dock = open_dock(ctx)
    out = output(ctx, json, quiet)
    targets = [dock.get(r) for r in refs]
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to remove without confirmation; pass --yes (or --dry-run)")
        names = ", ".join(e["id"][:12] for e in targets)
        if not typer.confirm(f"remove {names}?", err=True):
            raise typer.Exit(1)
    done = [_brief(dock.remove(e["id"], dry_run=dry_run)) for e in targets]
    verb = "would remove" if dry_run else "removed"
    out.result(
        {"dry_run": dry_run, "removed": done},
        human=lambda d: [out.line(f"{verb} {r['id'][:12]} {r['name'] or ''}") for r in d["removed"]],
        ids=[r["id"] for r in done],
    )


def recheck(
    ctx: typer.Context,
    ref: RefArg,
    no_run: Annotated[bool, typer.Option("--no-run", help="Do not run the model.")] = False,
    env_manager: EnvManagerOpt = "venv",
    json: JsonOpt = False,
) -> None:
    """Run the usability checks again on a stored learnware and store the result."""
    entry = open_dock(ctx).recheck(ref, run_model=not no_run, env_manager=env_manager)
    out = output(ctx, json)
    out.result(
        {"id": entry["id"], "status": entry["status"], "check": entry["check"]},
        human=lambda d: out.line(f"{d['id'][:12]} {d['status']}"),
    )


def doctor(
    ctx: typer.Context,
    rebuild_index: Annotated[bool, typer.Option("--rebuild-index", help="Rebuild the index from the blobs.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report problems without repairing.")] = False,
    json: JsonOpt = False,
) -> None:
    """Find and repair orphans, partial files and stale caches."""
    from ..errors import DockError

    dock = open_dock(ctx)
    report = dock.doctor(repair=not dry_run, rebuild_index=rebuild_index)
    out = output(ctx, json)

    def human(r: dict[str, Any]) -> None:
        for p in r["problems"] + r["leftovers"]:
            out.line(("repaired: " if p in r["repaired"] else "found:    ") + p)
        for p in r["repaired"]:
            if p not in r["problems"]:
                out.line("done:     " + p)
        out.line(f"{'consistent' if r['ok'] else 'NOT consistent'}: {r['learnwares']} learnware(s)")

    out.result(report, human=human)
    if not report["ok"]:
        raise typer.Exit(DockError.exit_code)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(submit)
    app.command("list")(list_cmd)
    app.command()(show)
    app.command()(alias)
    app.command()(export)
    app.command()(remove)
    app.command()(recheck)
    app.command()(doctor)
