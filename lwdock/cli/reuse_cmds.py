"""Reuse commands: ``lwdock reuse`` (build an ensemble) and ``lwdock predict`` (apply one)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ._options import TrustedOpt
from ._state import JsonOpt, open_dock, output

METHOD_HELP = ("average | job-selector | ensemble-pruning | feature-augment | feature-align (learnwares with other "
               "columns than yours: columns matched by name; augment and pruning align them too)")
ChunkOpt = Annotated[int, typer.Option("--chunk-size", help="Rows per batch sent to the learnwares.")]


FieldOpt = Annotated[
    Optional[str], typer.Option("--column", "--field", help="Text data: the .csv column or .jsonl field holding the text.")
]


def reuse_cmd(
    ctx: typer.Context,
    refs: Annotated[Optional[list[str]], typer.Argument(
        help="Learnware ids, id prefixes or aliases (or --id).", show_default=False)] = None,
    ids: Annotated[Optional[list[str]], typer.Option(
        "--id", "--ids", help="Learnware id, prefix or alias (repeatable; comma lists accepted).", show_default=False)] = None,
    from_search: Annotated[
        Optional[Path], typer.Option("--from-search", help="A `lwdock search --json` result: its mixture (ids + weights).")
    ] = None,
    method: Annotated[str, typer.Option("--method", "-m", help=METHOD_HELP)] = "average",
    labeled: Annotated[
        Optional[Path], typer.Option("--labeled", help="Labelled user rows (.csv/.npy/.npz); the label is the last column.")
    ] = None,
    label_column: Annotated[
        Optional[str], typer.Option("--label-column", help="Label column of --labeled: header name or 0-based index.")
    ] = None,
    out_path: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the ensemble artifact (.lwe).")] = None,
    data: Annotated[
        Optional[Path], typer.Option("--data", help="Unlabelled user rows: predict them now (and fit job-selector weights).")
    ] = None,
    preds: Annotated[Optional[Path], typer.Option("--preds", help="With --data: write predictions here (.csv/.npy).")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Also write class probabilities.")] = False,
    trusted: TrustedOpt = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (herding, folds).")] = 0,
    chunk_size: ChunkOpt = 20_000,
    field: FieldOpt = None,
    json: JsonOpt = False,
) -> None:
    """Combine learnwares into an ensemble for your task; save it (-o) and/or predict (--data)."""
    chosen = [r.strip() for v in [*(refs or ()), *(ids or ())] for r in v.split(",") if r.strip()]
    if bool(chosen) == (from_search is not None):
        raise UsageError("give learnwares (REF... or --id) or --from-search, not both and not neither")
    from ..reuse.jobs import reuse_job

    out = output(ctx, json)
    result = reuse_job(
        open_dock(ctx), chosen or from_search, method, labeled=labeled, label_column=label_column,
        data=data, output=out_path, predictions=preds, trusted=trusted, seed=seed, proba=proba, chunk_size=chunk_size,
        text_field=field,
    )

    def human(d: dict[str, Any]) -> None:
        rows = [{"id": lw["id"], "alias": lw.get("alias"), "weight": lw.get("weight")} for lw in d["learnwares"]]
        out.table(rows, ["id", "alias", "weight"], title=f"{d['method']} over {len(rows)} learnwares", file=sys.stderr)
        rep = d.get("report") or {}
        if rep:
            out.info(f"{rep['metric']} on {rep['n_labeled']} labelled rows: reuse {_fmt(rep['reuse'])} "
                     f"({rep['reuse_scored_on']}), user-only baseline {_fmt(rep['baseline'])}, "
                     f"best single {_fmt(_best(rep))}")
        if "output" in d:
            out.info(f"wrote {d['output']}")
        if "predictions_file" in d:
            out.info(f"wrote {d['n_predicted']} predictions to {d['predictions_file']}")
        elif "predictions" in d:
            for p in d["predictions"]:
                out.line(str(p))

    out.result(result, human=human, ids=[lw["id"] for lw in result["learnwares"]])


def predict_cmd(
    ctx: typer.Context,
    ensemble: Annotated[Path, typer.Argument(help="Ensemble artifact written by `lwdock reuse -o`.")],
    data: Annotated[list[str], typer.Argument(help="Files of rows to predict (- reads stdin): .csv/.npy/.npz tables, N x C x H x W .npy images, or texts (.txt/.jsonl/.csv).")],
    out_path: Annotated[str, typer.Option("--output", "-o", help="Predictions: a .csv or .npy file, a directory (DIR/: one .csv per input), or - (CSV on stdout).")],
    proba: Annotated[bool, typer.Option("--proba", help="Write class probabilities too (.npy: probabilities only).")] = False,
    trusted: TrustedOpt = False,
    chunk_size: ChunkOpt = 20_000,
    field: FieldOpt = None,
    json: JsonOpt = False,
) -> None:
    """Apply a saved ensemble to DATA (one file or many: the learnwares start once). Refuses if a learnware it needs is missing or changed."""
    from ..batch.predict import STDIO, predict_files

    out = output(ctx, json)
    if out.json and out_path == STDIO:
        raise UsageError("--json and -o - both write to stdout; choose one")
    result = predict_files(
        open_dock(ctx), ensemble, data, out_path, trusted=trusted, proba=proba, chunk_size=chunk_size, text_field=field
    )
    if out_path == STDIO:
        out.info(f"wrote {result['rows']} predictions to stdout ({result['method']}, {result['seconds']:.3g}s)")
        return
    if len(result["files"]) == 1:
        result["output"] = result["files"][0]["output"]
    out.result(
        result,
        human=lambda d: [out.info(f"wrote {f['rows']} predictions to {f['output']} ({d['method']}, {d['seconds']:.3g}s)")
                         for f in d["files"]],
        ids=[f["output"] for f in result["files"]],
    )


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def _best(rep: dict[str, Any]) -> Any:
    singles = rep.get("single") or []
    if not singles:
        return None
    return max(singles) if rep.get("higher_is_better") else min(singles)


def register(app: typer.Typer) -> None:
    app.command("reuse")(reuse_cmd)
    app.command("predict")(predict_cmd)
