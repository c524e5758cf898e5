"""Option types shared by several commands, so flags stay identical everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError

SemanticFileOpt = Annotated[
    Optional[Path], typer.Option("--semantic", help="Semantic specification JSON file.", show_default=False)
]
MAX_NAME = 200  # characters of a learnware name
MAX_DESCRIPTION = 10_000


def _bounded(limit: int):  # type: ignore[no-untyped-def]
    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and len(value) > limit:
            raise typer.BadParameter(f"{len(value)} characters; at most {limit}")
        return value

    return check


NameOpt = Annotated[Optional[str], typer.Option("--name", help=f"Semantic Name (at most {MAX_NAME} characters).",
                                                show_default=False, callback=_bounded(MAX_NAME))]
DescriptionOpt = Annotated[Optional[str], typer.Option("--description", help="Semantic Description.", show_default=False,
                                                       callback=_bounded(MAX_DESCRIPTION))]
DataTypeOpt = Annotated[
    Optional[str], typer.Option("--data-type", help="Semantic Data: Table, Image or Text.", show_default=False)
]
TaskOpt = Annotated[
    Optional[str],
    typer.Option("--task", help="Semantic Task: Classification, Regression, Feature Extraction, ...", show_default=False),
]
LibraryOpt = Annotated[
    Optional[str], typer.Option("--library", help="Semantic Library: Scikit-learn, PyTorch, ...", show_default=False)
]
ScenarioOpt = Annotated[
    Optional[list[str]], typer.Option("--scenario", help="Semantic Scenario tag (repeatable).", show_default=False)
]
LicenseOpt = Annotated[Optional[str], typer.Option("--license", help="Semantic License, e.g. MIT.", show_default=False)]
InputDimOpt = Annotated[
    Optional[int], typer.Option("--input-dim", help="Semantic Input.Dimension.", show_default=False)
]
OutputDimOpt = Annotated[
    Optional[int],
    typer.Option("--output-dim", help="Semantic Output.Dimension (number of classes for classifiers).", show_default=False),
]


# -- filters: the same flags, with the same rules, on `list` and `search` (lwdock/search/semantic.py)
Multi = Optional[list[str]]  # a repeatable option
NameLikeOpt = Annotated[Optional[str], typer.Option(
    "--name", help="Name, description or alias contains (else fuzzily matches) this.", show_default=False)]
DataTypesOpt = Annotated[Multi, typer.Option("--data-type", help="Data class (repeatable): Table, Image, Text.",
                                             show_default=False)]
TasksOpt = Annotated[Multi, typer.Option("--task", help="Task class (repeatable).", show_default=False)]
LibrariesOpt = Annotated[Multi, typer.Option("--library", help="Library class (repeatable).", show_default=False)]
ScenariosOpt = Annotated[Multi, typer.Option("--scenario", help="Scenario tag (repeatable; any may match).",
                                             show_default=False)]
LicensesOpt = Annotated[Multi, typer.Option("--license", help="License class (repeatable).", show_default=False)]


def comma_list(values: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    """Repeated and comma-separated values as one tuple (None when none were given)."""
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def json_object(text: Optional[str], flag: str) -> Optional[dict[str, Any]]:
    """A flag's JSON object, or a usage error naming the flag."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object, like '{{\"hidden\": 64}}'")
    return value


def semantic_flags(**flags: Any) -> dict[str, Any]:
    """Only the semantic flags that were given."""
    return {k: v for k, v in flags.items() if v not in (None, [], ())}


def semantic_from_options(
    semantic_file: Optional[Path],
    *,
    base: Optional[dict[str, Any]] = None,
    **flags: Any,
) -> Optional[dict[str, Any]]:
    """--semantic FILE, overridden by any semantic flags; None when neither is given."""
    from ..format import semantic as sem

    if semantic_file is not None:
        base = sem.load(semantic_file)
    if base is None and all(v in (None, [], ()) for v in flags.values()):
        return None
    return sem.from_flags(base=base, **flags)


# -- listing commands: the table format (lwdock/cli/_output.py)
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", metavar="table|tsv|csv|json", show_default=False,
    help="Output format (default: a table on a terminal, tsv when piped).")]
NoHeaderOpt = Annotated[bool, typer.Option("--no-header", help="tsv/csv: leave out the header row.")]
SORT_KEYS = ("created", "id", "alias", "name", "data", "task", "dim", "status")
SortOpt = Annotated[str, typer.Option(
    "--sort", metavar="KEY", help=f"Sort by {', '.join(SORT_KEYS)}; a leading - sorts descending.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", min=0, show_default=False,
                                                 help="Show at most N rows.")]


def sort_rows(rows: list[dict[str, Any]], sort: str, limit: Optional[int]) -> list[dict[str, Any]]:
    """``rows`` ordered by the key ``sort`` (``-key``: descending; missing values last), then cut to ``limit``."""
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise UsageError(f"cannot sort by {key!r}; choose one of {', '.join(SORT_KEYS)}")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    ordered = sorted(present, key=lambda r: _sort_value(r[key]), reverse=sort.startswith("-")) + missing
    return ordered if limit is None else ordered[:limit]


def _sort_value(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


# -- running learnware code: --trusted is the one switch (--env-manager stays as a hidden alias)
ENV_MANAGERS = ("venv", "none")


def _check_env_manager(value: str) -> str:
    if value not in ENV_MANAGERS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(ENV_MANAGERS)}; use --trusted for 'none'")
    return value


TrustedOpt = Annotated[bool, typer.Option(
    "--trusted", help="Trusted learnwares only: run their code with lwdock's own interpreter, without an isolated env.")]
EnvManagerOpt = Annotated[str, typer.Option("--env-manager", hidden=True, callback=_check_env_manager,
                                            help="Old spelling: venv, or none (= --trusted).")]


def pick_env_manager(trusted: bool, env_manager: str) -> str:
    """The env manager that --trusted / the old --env-manager ask for."""
    return "none" if trusted else env_manager


# -- the reduced-set size of a spec: --points (-K / --K are the old spellings, hidden beside -k = top-k)
def points_option(help: str) -> Any:
    return typer.Option("--points", "-K", "--K", metavar="N", help=help)


POINTS_HELP = "Reduced-set size: how many weighted points summarise the data."
