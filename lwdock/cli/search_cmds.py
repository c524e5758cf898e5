"""``lwdock search``: semantic filters plus statistical ranking and the best mixture."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import NoResultsError
from ._options import FormatOpt, NoHeaderOpt, DataTypesOpt, LibrariesOpt, LicensesOpt, Multi, NameLikeOpt, ScenariosOpt, TasksOpt
from ._state import JsonOpt, open_dock, output


def search(
    ctx: typer.Context,
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Your RKME specification JSON.", show_default=False)] = None,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", help="Your data (.npy/.npz/.csv); its spec is fitted locally, no rows are stored.",
                     show_default=False),
    ] = None,
    name: NameLikeOpt = None,
    description_like: Annotated[
        Optional[str], typer.Option("--description-like", help="Description contains / fuzzily matches this.",
                                    show_default=False)
    ] = None,
    data_type: DataTypesOpt = None,
    task: TasksOpt = None,
    library: LibrariesOpt = None,
    scenario: ScenariosOpt = None,
    license_: LicensesOpt = None,
    ids: Annotated[Multi, typer.Option("--id", help="Id, id prefix or alias (repeatable).", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", "--top", help="How many single learnwares to list.")] = 10,
    max_mixture: Annotated[int, typer.Option("--max-mixture", help="Most learnwares in the mixture (1: none).")] = 5,
    method: Annotated[str, typer.Option("--method", help="Mixture search: qp (weights over the best 10), greedy or auto.")] = "qp",
    rerank: Annotated[
        str, typer.Option("--rerank", help="verified: re-rank the best candidates by what their models do on your "
                          "rows (label-free); mmd: by the distributions alone (no model runs).")
    ] = "verified",
    min_score: Annotated[
        Optional[float], typer.Option("--min-score", help="Drop single learnwares scoring below this (0..1).",
                                      show_default=False)
    ] = None,
    prefilter: Annotated[
        Optional[bool],
        typer.Option("--prefilter/--no-prefilter", help="--prefilter: sketches, then a fixed exact re-rank budget; --no-prefilter: every "
                     "learnware exact (default: bounded from 250, the budget above 20,000; docs/search.md).",
                     show_default=False),
    ] = None,
    include_unchecked: Annotated[
        bool, typer.Option("--include-unchecked", help="Also return semantic-only (unchecked) learnwares.")
    ] = False,
    fail_if_empty: Annotated[
        bool, typer.Option("--fail-if-empty", help="Exit with code 9 when nothing is found, or when the search cannot tell learnwares apart.")
    ] = False,
    embedder: Annotated[
        str, typer.Option("--embedder", help="Text data: sentence embedder (must match the learnwares' specs).")
    ] = "all-MiniLM-L6-v2",
    field: Annotated[
        Optional[str], typer.Option("--column", "--field", help="Text data: the .csv column or .jsonl field holding the text.")
    ] = None,
    fmt: FormatOpt = None,
    no_header: NoHeaderOpt = False,
    json: JsonOpt = False,
) -> None:
    """Search the dock by semantic filters and/or your data's RKME specification.

    --data takes a table (.csv/.npy/.npz), images (N x C x H x W .npy) or texts
    (.txt one per line, .jsonl/.csv with --field); --data-type picks the kind when
    the file alone does not tell.
    """
    from ..search.api import search as run_search

    out = output(ctx, json, fmt=fmt, header=not no_header)
    dock = open_dock(ctx)
    result = run_search(
        dock, spec, data=data, name=name, description_like=description_like, data_type=data_type, task=task,
        library=library, scenario=scenario, license=license_, ids=ids, k=k, max_mixture=max_mixture, method=method,
        include_unchecked=include_unchecked, prefilter=prefilter, embedder=embedder, text_field=field, rerank=rerank,
        min_score=min_score,
    ).to_dict()

    def human(d: dict[str, Any]) -> None:
        # stdout is the singles table only (pure TSV/CSV when piped); the mixture line goes to
        # stdout beside a terminal table and to stderr otherwise (--json has both as data)
        if d["singles"]:
            out.table(d["singles"], ["rank", "id", "alias", "name", "status", "score", "mmd2"], title="single learnwares")
        mix = d.get("mixture")
        if mix:
            on_terminal = sys.stdout.isatty() and fmt in (None, "table")
            short = 12 if on_terminal else None
            parts = ", ".join(f"{i[:short]}:{w:.3f}" for i, w in zip(mix["ids"], mix["weights"]))
            line = f"mixture  score {mix['score']:.4g}  mmd2 {mix['mmd2']:.4g}  {parts}"
            out.line(line) if on_terminal else out.info(line)
        _human_hetero(out, d.get("heterogeneous") or [])

    found = [s["id"] for s in result["singles"]] + [h["id"] for h in result["heterogeneous"]]
    out.result(result, human=human, ids=found)
    for note in (result.get("signals") or {}).get("notes", []):
        out.warn(note)
    if result["explanation"] and not fail_if_empty:
        out.info(f"no results: {result['explanation']}")
    if fail_if_empty and not found:
        raise NoResultsError(result["explanation"] or "no learnware matches")
    if fail_if_empty and result.get("cannot_discriminate"):
        flags = result["signals"].get("flags", [])
        why = "no learnware saw data like yours" if "no_match" in flags else "the search cannot tell learnwares apart"
        raise NoResultsError(f"{why} (--fail-if-empty treats it as no result)")


def _human_hetero(out: Any, hits: list[dict[str, Any]]) -> None:
    """Heterogeneous hits: a table, then each hit's shared and imputed columns."""
    if not hits:
        return
    rows = [{**h, "id": h["id"][:12], "shared": f"{len(h['shared_columns'])}/{h['n_columns']}"} for h in hits]
    out.table(rows, ["rank", "id", "alias", "name", "status", "damage", "shared"],
              title="heterogeneous learnwares (other columns than yours; damage: share of what they need that you lack)")
    for h in hits:
        pairs = ", ".join(f"{c['user']} -> {c['learnware']}" + ("" if c.get("relation") == "same feature" else " (proxy)")
                          for c in h["shared_columns"])
        out.line(f"{h['rank']}. {h['id'][:12]} (heterogeneous) shares: {pairs}")
        if h["imputed_columns"]:
            out.line(f"   imputed: {', '.join(h['imputed_columns'])}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
