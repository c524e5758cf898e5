"""Dock commands: init, submit, list, show, alias, export, remove, recheck, doctor."""

from __future__ import annotations

import json as _json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..config import resolve_dock_dir
from ..errors import DockError, UsageError
from ..format import semantic as sem
from ._options import (
    DataTypeOpt,
    EnvManagerOpt,
    TrustedOpt,
    DataTypesOpt,
    DescriptionOpt,
    InputDimOpt,
    LibrariesOpt,
    LibraryOpt,
    LicenseOpt,
    LicensesOpt,
    Multi,
    NameLikeOpt,
    NameOpt,
    OutputDimOpt,
    ScenarioOpt,
    ScenariosOpt,
    SemanticFileOpt,
    TaskOpt,
    TasksOpt,
    FormatOpt,
    LimitOpt,
    NoHeaderOpt,
    SortOpt,
    pick_env_manager,
    semantic_flags,
    sort_rows,
)
from ._state import JsonOpt, QuietOpt, open_dock, output, state

if TYPE_CHECKING:
    from ..records import Entry

RefArg = Annotated[str, typer.Argument(help="Learnware id, unique id prefix (>= 4 hex digits) or alias.")]


LIST_COLUMNS = ["id", "alias", "name", "data", "task", "dim", "status", "created"]


def existing_gamma(path: Path) -> Optional[float]:
    """The gamma of the dock at ``path``, or None where there is no readable dock."""
    try:
        return float(_json.loads((path / "dock.json").read_text())["gamma"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _brief(e: Entry) -> dict[str, Any]:
    """One row of ``list`` (and the ``--json`` of submit, alias and remove): ``Entry.summary()``."""
    return e.summary()


def init(
    ctx: typer.Context,
    gamma: Annotated[
        Optional[float],
        typer.Option("--gamma", help="Recorded for reference only: search picks its kernel per feature space.",
                     show_default=False),
    ] = None,
    index: Annotated[Optional[str], typer.Option(
        "--index", help="tinydb (default) or a postgresql:// URL: a team dock shared by several machines "
        "(docs/team.md; env LWDOCK_INDEX).", show_default=False)] = None,
    blobs: Annotated[Optional[str], typer.Option(
        "--blobs", help="local (default) or an fsspec URL such as s3://bucket/prefix for the zips "
        "(docs/team.md; env LWDOCK_BLOBS).", show_default=False)] = None,
    json: JsonOpt = False,
) -> None:
    """Create a dock (idempotent), or join a team dock from this machine."""
    from ..api import Dock  # the library: see the note in lwdock/cli/__init__.py

    path = resolve_dock_dir(state(ctx).dock)
    if path.exists() and not path.is_dir():
        raise DockError(f"{path} is a file, not a dock directory", hint="choose another --dock path")
    dock = Dock.init(path, gamma=gamma, index=index, blobs=blobs)
    out = output(ctx, json)
    data = {"dock": str(dock.path), **dock.settings}
    out.result(data, human=lambda d: out.info(f"dock ready at {d['dock']} (search kernel: chosen per feature space)"))


def submit(
    ctx: typer.Context,
    zips: Annotated[list[str], typer.Argument(
        help="Learnware zips, learnware folders (zipped first), folders of zips, or - (paths on stdin).")],
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
    trusted: TrustedOpt = False,
    env_manager: EnvManagerOpt = "venv",
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Succeed if the learnware is already there.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Zips checked at once (default: the cores).",
                                                show_default=False)] = None,
    executor: Annotated[str, typer.Option("--executor", help="Where checks run: local (threads) or dask "
                                          "(DASK_SCHEDULER_ADDRESS, else a local cluster; docs/batch.md).")] = "local",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check learnware zips and store them. Each zip is all or nothing.

    Several zips (or a folder, or - for paths on stdin) are checked in parallel and stored
    together; one result line per zip. If any zip is not stored, the others still are, and the
    exit code is that of the first failed zip (8: a check failed, 6: a malformed zip, 13: already
    in the dock without --exist-ok).
    """
    from ..batch.submit import SubmitOptions, submit_inputs  # the library: see lwdock/cli/__init__.py

    options = SubmitOptions(
        semantic=sem.load(semantic_file) if semantic_file is not None else None,
        semantic_flags=semantic_flags(
            name=name, description=description, data_type=data_type, task=task, library=library,
            scenario=scenario, license=license, input_dim=input_dim, output_dim=output_dim,
        ),
        run_model=not no_run, env_manager=pick_env_manager(trusted, env_manager), exist_ok=exist_ok,
    )  # fmt: skip
    dock = open_dock(ctx)
    out = output(ctx, json, quiet)
    with submit_inputs(zips) as inputs:  # learnware folders are zipped first (docs/packaging.md)
        if alias and len(inputs.paths) > 1:
            raise UsageError("--alias needs exactly one zip")
        if inputs.single and executor == "local":
            entry = dock.submit(inputs.paths[0], options.semantic, semantic_flags=options.semantic_flags,
                                alias=alias, run_model=options.run_model, env_manager=options.env_manager,
                                exist_ok=exist_ok)  # fmt: skip
            out.info(f"submitted {zips[0]} as {entry.short_id} ({entry.status})")
            out.result(_brief(entry), human=lambda r: out.line(r["id"]), ids=[entry.id])
            return
        _submit_many(dock, inputs.paths, options, executor, jobs, out)


def _submit_many(dock: Any, paths: list[Path], options: Any, executor: str, jobs: int | None, out: Any) -> None:
    from ..batch.executors import make_executor
    from ..batch.submit import BatchFailedError, iter_lines, submit_many

    engine = make_executor(executor, jobs)
    try:
        results = submit_many(dock, paths, options, executor=engine)
    finally:
        engine.close()
    out.result(
        [r.to_dict() for r in results],
        human=lambda _: [out.line(line) for line in iter_lines(results)],
        ids=[r.entry.id for r in results if r.entry is not None],
    )
    stored = sum(r.ok and not r.existed for r in results)
    there = sum(r.existed for r in results)
    out.info(f"{stored} stored, {there} already in the dock, {len(results) - stored - there} failed")
    if not all(r.ok for r in results):
        raise BatchFailedError(results)


def list_cmd(
    ctx: typer.Context,
    status: Annotated[Multi, typer.Option("--status", help="usable, semantic-only or invalid (repeatable).",
                                          show_default=False)] = None,
    data_type: DataTypesOpt = None,
    task: TasksOpt = None,
    library: LibrariesOpt = None,
    scenario: ScenariosOpt = None,
    license: LicensesOpt = None,
    name: NameLikeOpt = None,
    sort: SortOpt = "-created",
    limit: LimitOpt = None,
    fmt: FormatOpt = None,
    no_header: NoHeaderOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List learnwares, newest first. The filters follow the same rules as search's."""
    out = output(ctx, json, quiet, fmt, header=not no_header)
    dock = open_dock(ctx)
    fast = sort == "-created"  # the summary lists newest first: it can stop at the limit
    entries = dock.list(
        status=status, data_type=data_type, task=task, library=library, scenario=scenario, license=license,
        name=name, limit=limit if fast else None, brief=True,
    )
    rows = sort_rows([_brief(e) for e in entries], sort, limit)

    def human(data: list[dict[str, Any]]) -> None:
        out.table(data, LIST_COLUMNS)
        out.info(f"{len(data)} learnware(s)")

    out.result(rows, human=human, ids=[r["id"] for r in rows])


def show(ctx: typer.Context, ref: RefArg, json: JsonOpt = False) -> None:
    """Show one learnware: semantic spec, specs, status and check report."""
    entry = open_dock(ctx).get(ref, full=True)
    out = output(ctx, json)

    def human(_: dict[str, Any]) -> None:
        b = _brief(entry)
        for k in ("id", "alias", "name", "data", "task", "status", "created"):
            out.line(f"{k:<12}{b[k] if b[k] is not None else '-'}")
        out.line(f"{'specs':<12}" + ", ".join(f"{s.kind} (dim {s.dim if s.dim is not None else '?'})"
                                              for s in entry.specs))
        out.line(f"{'requires':<12}" + (", ".join(entry.requirements) or "-"))
        for c in entry.check.checks:
            out.line(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['name']}: {c.get('reason', '')}")

    out.result(entry.to_dict(), human=human, ids=[entry.id])


def alias(
    ctx: typer.Context,
    ref: RefArg,
    name: Annotated[Optional[str], typer.Argument(
        help="New alias: a letter first; not the start of another learnware's id (aliases are matched "
             "before id prefixes). Omit with --clear.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the alias.")] = False,
    json: JsonOpt = False,
) -> None:
    """Set or clear a learnware's human alias."""
    if (name is None) == (not clear):
        raise UsageError("give an alias, or --clear")
    dock = open_dock(ctx)
    entry = dock.set_alias(dock.resolve(ref), None if clear else name)
    out = output(ctx, json)
    out.result(_brief(entry), human=lambda b: out.info(f"{b['id'][:12]} alias {b['alias'] or '(none)'}"),
               ids=[entry.id])


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
    dock = open_dock(ctx)
    out = output(ctx, json, quiet)
    targets = [dock.get(r) for r in refs]
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to remove without confirmation; pass --yes (or --dry-run)")
        names = ", ".join(e.short_id for e in targets)
        if not typer.confirm(f"remove {names}?", err=True):
            raise typer.Exit(1)
    done = [_brief(dock.remove(e.id, dry_run=dry_run)) for e in targets]
    verb = "would remove" if dry_run else "removed"
    out.result(
        {"dry_run": dry_run, "removed": done},
        human=lambda d: [out.info(f"{verb} {r['id'][:12]} {r['name'] or ''}") for r in d["removed"]],
        ids=[r["id"] for r in done],
    )


def recheck(
    ctx: typer.Context,
    ref: RefArg,
    no_run: Annotated[bool, typer.Option("--no-run", help="Do not run the model.")] = False,
    trusted: TrustedOpt = False,
    env_manager: EnvManagerOpt = "venv",
    json: JsonOpt = False,
) -> None:
    """Run the usability checks again on a stored learnware and store the result."""
    entry = open_dock(ctx).recheck(ref, run_model=not no_run, env_manager=pick_env_manager(trusted, env_manager))
    out = output(ctx, json)
    out.result(
        {"id": entry.id, "status": entry.status, "check": entry.check.to_dict()},
        human=lambda d: out.line(f"{d['id'][:12]} {d['status']}"),
    )


def doctor(
    ctx: typer.Context,
    rebuild_index: Annotated[bool, typer.Option("--rebuild-index", help="Rebuild the index from the blobs.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report problems without repairing.")] = False,
    json: JsonOpt = False,
) -> None:
    """Find and repair orphans, partial files and stale caches; drop learnwares whose blob is lost."""
    dock = open_dock(ctx)
    report = dock.doctor(repair=not dry_run, rebuild_index=rebuild_index).to_dict()
    out = output(ctx, json)

    def human(r: dict[str, Any]) -> None:
        for p in r["problems"] + r["leftovers"]:
            out.line(("repaired: " if p in r["repaired"] else "found:    ") + p)
        for p in r["repaired"]:
            if p not in r["problems"]:
                out.line("done:     " + p)
        count = "index unreadable" if r["learnwares"] is None else f"{r['learnwares']} learnware(s)"
        out.line(f"{'consistent' if r['ok'] else 'NOT consistent'}: {count}")

    out.result(report, human=human)
    if not report["ok"]:
        left = [p for p in report["problems"] if p not in report["repaired"]]
        raise DockError(f"the dock is not consistent: {left[0] if left else 'see the report above'}",
                        hint=_doctor_hint(left, dry_run))


def _doctor_hint(left: list[str], dry_run: bool) -> str:
    """The next step for what doctor could not (or, with --dry-run, did not) repair."""
    if dry_run:
        return "run `lwdock doctor` to repair (each problem says what the repair does)"
    if left and "does not match its hash" in left[0]:
        return "restore its blob from a backup, or drop it with `lwdock remove ID`"
    return "run `lwdock doctor --rebuild-index`"


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
