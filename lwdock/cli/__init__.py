"""The ``lwdock`` command line: a thin layer over the ``lwdock`` library.

Only typer and lwdock's light modules (errors, config, records, the output sink) are imported
at start-up. The library code behind a command (the dock and its TinyDB index, specs with
numpy and torch, search, reuse with scikit-learn) is imported inside the command function, so
``lwdock --help`` stays fast (tests/test_cli_dock.py::test_help_does_not_import_heavy_modules).
That is the one reason for the function-local imports in lwdock/cli/.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import __version__, progress
from .._log import configure
from ..check.sandbox import set_cli_mode
from . import check_cmds, dock_cmds, info_cmds, pack_cmds, reuse_cmds, search_cmds, spec_cmds, team_cmds
from ._group import LwdockGroup
from ._state import State


app = typer.Typer(
    cls=LwdockGroup,
    name="lwdock",
    help="A learnware dock: submit models with RKME specifications, search them by your data, and reuse them.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lwdock {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    dock: Annotated[
        Optional[Path],
        typer.Option("--dock", help="Dock directory (default: $LWDOCK_HOME, then the platform data dir).", show_default=False),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print ids only, one per line.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    sandbox: Annotated[
        Optional[str],
        typer.Option("--sandbox", help="Isolation of learnware code: kernel (bubblewrap; the default) or weak "
                     "(resource limits only, for trusted learnwares; warns). Default: $LWDOCK_SANDBOX, then kernel.",
                     show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    ctx.obj = State(dock=dock, json=json, quiet=quiet, debug=debug)
    configure(debug=debug, quiet=quiet)
    set_cli_mode(sandbox)  # also resets it: one process may run several commands (tests, scripts)
    progress.use_rich()  # bars beside the rich tables; the Python API draws them with tqdm


# one module per command group; each adds its commands with register(app)
for _group in (dock_cmds, info_cmds, pack_cmds, spec_cmds, check_cmds, search_cmds, reuse_cmds, team_cmds):
    _group.register(app)


def main() -> None:
    warnings.showwarning = _one_line_warning
    app(prog_name="lwdock")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    # a library's warning (numpy overflow, ...) is one stderr line like lwdock's own, no source line
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
