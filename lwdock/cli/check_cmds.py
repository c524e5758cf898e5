"""``lwdock check ZIP`` and the ``lwdock envs`` group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import resolve_dock_dir
from ..store.layout import Layout
from ..errors import ExitCode
from ._options import (
    DataTypeOpt,
    DescriptionOpt,
    EnvManagerOpt,
    FormatOpt,
    InputDimOpt,
    LibraryOpt,
    LicenseOpt,
    NameOpt,
    NoHeaderOpt,
    OutputDimOpt,
    ScenarioOpt,
    TaskOpt,
    TrustedOpt,
    pick_env_manager,
    semantic_flags,
)
from ._state import JsonOpt, output, state



def _envs_dir(ctx: typer.Context) -> Path:
    return resolve_dock_dir(state(ctx).dock) / "envs"


def _scratch_dir(ctx: typer.Context) -> Optional[Path]:
    """``<dock>/tmp`` when the chosen dock exists (doctor cleans it), else None: the per-user cache."""
    layout = Layout(resolve_dock_dir(state(ctx).dock))
    return layout.tmp if layout.version_file.is_file() else None


def _print_report(out: Any, data: dict[str, Any]) -> None:
    mark = {True: "pass", False: "FAIL", None: "skip"}
    rows = [{"check": c["name"], "result": mark[c["ok"]], "reason": c["reason"]} for c in data["checks"]]
    out.table(rows, ["check", "result", "reason"], title="usability checks")
    out.line(f"status: {data['status']}")


def check(
    ctx: typer.Context,
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", help="Learnware zip to check.")],
    semantic: Annotated[Optional[Path], typer.Option("--semantic", help="Semantic spec JSON (default: the one in the zip).")] = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    data_type: DataTypeOpt = None,
    task: TaskOpt = None,
    library: LibraryOpt = None,
    scenario: ScenarioOpt = None,
    license: LicenseOpt = None,
    input_dim: InputDimOpt = None,
    output_dim: OutputDimOpt = None,
    trusted: TrustedOpt = False,
    env_manager: EnvManagerOpt = "venv",
    no_run: Annotated[bool, typer.Option("--no-run", help="Check the semantic spec and files only; do not run the model.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds allowed for loading the model and for each call.")] = 60.0,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="Address-space limit of the model worker, MiB.")] = 4096,
    json: JsonOpt = False,
) -> None:
    """Run the usability checks on ZIP without storing it."""
    from ..check.checks import check_zip

    env_manager = pick_env_manager(trusted, env_manager)
    out = output(ctx, json)
    if env_manager == "none" and not no_run:
        out.warn("--trusted runs the model with lwdock's own interpreter: use it for trusted learnwares only")
    report = check_zip(zip_path, semantic, envs_dir=_envs_dir(ctx), env_manager=env_manager,
                       run_model=not no_run, timeout=timeout, memory_mb=memory_mb, scratch_dir=_scratch_dir(ctx),
                       semantic_flags=semantic_flags(
                           name=name, description=description, data_type=data_type, task=task, library=library,
                           scenario=scenario, license=license, input_dim=input_dim, output_dim=output_dim))
    data = report.to_dict()
    out.result(data, human=lambda d: _print_report(out, d))
    if report.status == "invalid":
        raise typer.Exit(ExitCode.CHECK_FAILED)


def envs_list(ctx: typer.Context, fmt: FormatOpt = None, no_header: NoHeaderOpt = False, json: JsonOpt = False) -> None:
    """List cached envs with their requirements and size."""
    from ..check.envs import EnvManager

    out = output(ctx, json, fmt=fmt, header=not no_header)
    rows = EnvManager(_envs_dir(ctx)).list()
    out.result(rows, human=lambda r: out.table(r, ["key", "state", "size_mb", "last_used", "requirements"]),
               ids=[r["key"] for r in rows])


def envs_prune(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    json: JsonOpt = False,
) -> None:
    """Remove cached envs (they are rebuilt on demand)."""
    from ..check.envs import EnvManager

    manager = EnvManager(_envs_dir(ctx))
    out = output(ctx, json)
    if not dry_run and not yes:
        n = len(manager.list(sizes=False))
        if n and not typer.confirm(f"remove {n} env(s)?", err=True):
            raise typer.Abort()
    rows = manager.prune(dry_run=dry_run)
    data = {"dry_run": dry_run, "removed": rows, "freed_mb": round(sum(r["size_mb"] or 0 for r in rows), 2)}
    out.result(data, human=lambda d: out.info(
        f"{'would remove' if dry_run else 'removed'} {len(d['removed'])} env(s), {d['freed_mb']} MiB"),
        ids=[r["key"] for r in rows])


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    envs = typer.Typer(help="Cached learnware environments (under <dock>/envs).", no_args_is_help=True)
    envs.command("list")(envs_list)
    envs.command("prune")(envs_prune)
    app.add_typer(envs, name="envs")
