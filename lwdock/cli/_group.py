"""The root command group: one error line per failure, global options anywhere, tidy help.

Click's own handling of usage errors prints a usage block and a boxed message; lwdock prints
one ``error:`` line and a ``hint:`` line instead, with exit code 2, like every other error
(``lwdock/cli/_errors.py``). The global options (``--dock``, ``--json``, ``-q``, ``--debug``,
``--sandbox``) are accepted after the subcommand too: they are moved in front of it before
Click parses the command line. Help shows real argument names and no type metavars.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer import _click  # the Click that typer ships (typer >= 0.26 vendors it)
from typer.core import TyperArgument, TyperGroup, TyperOption

from ..config import load_settings
from ..errors import ExitCode, LwdockError
from ._errors import report
from ._state import state

# global options: name -> takes a value
GLOBAL_OPTIONS = {"--dock": True, "--sandbox": True, "--json": False, "--quiet": False, "-q": False,
                  "--debug": False}


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move global options (and their values) to the front, so they work after a subcommand."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name]
            if takes_value and "=" not in arg and i + 1 < len(args):
                front.extend(args[i:i + 2])
                i += 2
                continue
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


class LwdockGroup(TyperGroup):
    """Turns every exception into a one-line message and a documented exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = hoist_global_options(sys.argv[1:] if args is None else list(args))
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _click.exceptions.NoArgsIsHelpError as exc:
            # `lwdock` (or `lwdock spec`) alone asks for help, as with docker, gh and kubectl: help on stdout, exit 0
            sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx is not None else "")
            sys.exit(ExitCode.OK)
        except _click.exceptions.ClickException as exc:
            sys.exit(usage_error(exc))
        except typer.Abort:
            sys.stderr.write("error: aborted\n")
            sys.exit(ExitCode.ERROR)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, BrokenPipeError):
            raise  # Click itself quiets a closed stdout (`lwdock list -q | head -1`)
        except Exception as exc:  # noqa: BLE001 - this is the one place that maps errors
            if _is_click_signal(exc):
                raise
            raise typer.Exit(report(exc, _debug(ctx))) from None
        except KeyboardInterrupt as exc:
            raise typer.Exit(report(exc, _debug(ctx))) from None


def usage_error(exc: Any) -> int:
    """One ``error:`` line (plus a ``hint:``) for a Click error; its exit code (2 for usage errors)."""
    message = " ".join(exc.format_message().split())
    sys.stderr.write(f"error: {message}\n")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        sys.stderr.write(f"hint: see '{ctx.command_path} --help'\n")
    return int(getattr(exc, "exit_code", ExitCode.USAGE))


def _is_click_signal(exc: BaseException) -> bool:
    # usage errors and friends keep Click's own handling (exit code 2)
    return type(exc).__module__.startswith(("typer._click", "click"))


def _debug(ctx: typer.Context) -> bool:
    try:
        return state(ctx).debug or load_settings().debug
    except LwdockError:  # a bad LWDOCK_* value: that error is being reported right now
        return state(ctx).debug


# -- help ----------------------------------------------------------------------------------------
_METAVARS = {"int": "N", "float": "X", "Path": "PATH", "str": "TEXT"}
_PLURALS = {"zips": "ZIP", "refs": "REF", "ids": "ID", "files": "FILE"}


class _Argument(TyperArgument):
    """An argument shown by its name (``REF``, ``ZIP...``), without braces or a type."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")


# old spellings kept for one release: they parse, but help shows only the new name
# (-K/--K: the reduced-set size, now --points, beside search's -k, the top-k)
HIDDEN_ALIASES = frozenset({"--field", "--text-field", "--ids", "--env-manager", "-K", "--K"})


class _Option(TyperOption):
    """An option whose old spellings (HIDDEN_ALIASES) parse but do not show in help."""

    def get_help_record(self, ctx: _click.Context) -> tuple[str, str] | None:
        shown = [o for o in self.opts if o not in HIDDEN_ALIASES]
        if not shown:
            return None
        saved, self.opts = self.opts, shown
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = saved


def tidy_help(command: Any) -> None:
    """Real argument names and value names (N, X, PATH, TEXT) instead of type metavars."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None  # plain Click help: no boxes, and no rich import for --help
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                name = param.name or "arg"
                param.metavar = _PLURALS.get(name, name.upper()) if param.nargs != 1 else name.upper()
            if type(param) is TyperArgument:
                param.__class__ = _Argument
        elif isinstance(param, TyperOption):
            if param.metavar is None and not (param.is_flag or param.count):
                param.metavar = _value_name(param)
            if type(param) is TyperOption and HIDDEN_ALIASES.intersection(param.opts):
                param.__class__ = _Option


def _value_name(param: Any) -> str:
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice and desc.choices:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
    annotation = getattr(desc, "annotation", None)
    inner = getattr(annotation, "__args__", None)
    if inner:
        annotation = inner[0]
    return _METAVARS.get(getattr(annotation, "__name__", ""), "VALUE")
