"""``lwdock pack``: build a learnware zip from a pickled model and its training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._options import (
    DescriptionOpt,
    LibraryOpt,
    LicenseOpt,
    NameOpt,
    OutputDimOpt,
    ScenarioOpt,
    SemanticFileOpt,
    TaskOpt,
    semantic_from_options,
)
from ..records import Semantic
from ._state import JsonOpt, output


def pack(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option("--model", help="Pickled or joblib model with a sklearn-style predict.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="Learnware zip to write.")],
    data: Annotated[
        Optional[Path],
        typer.Option("--data", help="Training data for the RKME spec: Table .npy/.npz/.csv; Image N x C x H x W "
                     ".npy/.npz; Text .txt (one per line), .jsonl or .csv (with --column)."),
    ] = None,
    data_type: Annotated[
        Optional[str], typer.Option("--data-type", show_default=False, help="Table, Image or Text: picks the spec and "
                                    "the model wrapper (default: the --semantic file's Data, else Table).")
    ] = None,
    embedder: Annotated[
        str, typer.Option("--embedder", help="Text: all-MiniLM-L6-v2 (needs lwdock[text]) or hashing-384.")
    ] = "all-MiniLM-L6-v2",
    text_field: Annotated[
        Optional[str], typer.Option("--column", "--text-field", help="Text: the .csv column or .jsonl field holding the text.")
    ] = None,
    spec: Annotated[Optional[Path], typer.Option("--spec", help="A ready statistical spec instead of --data.")] = None,
    semantic_file: SemanticFileOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    task: TaskOpt = None,
    library: LibraryOpt = None,
    scenario: ScenarioOpt = None,
    license: LicenseOpt = None,
    output_dim: OutputDimOpt = None,
    requirement: Annotated[
        Optional[list[str]],
        typer.Option("--requirement", "-r", help="pip requirement (repeatable; default: this scikit-learn)."),
    ] = None,
    predict_output: Annotated[
        str, typer.Option("--predict-output", help="Classifiers: auto (probabilities if available), labels or proba.")
    ] = "auto",
    gamma: Annotated[float, typer.Option("--gamma", help="RBF kernel gamma (use your dock's).")] = 0.1,
    k: Annotated[
        Optional[int], typer.Option("-K", "--K", help="Reduced-set size (default 100; 50 for Image).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Subsample the data first.")] = None,
    json: JsonOpt = False,
) -> None:
    """Build a learnware zip: model wrapper, learnware.yaml, requirements, specs."""
    from ..format.pack import PackOptions
    from ..format.pack import pack as do_pack

    semantic = semantic_from_options(
        semantic_file, name=name, description=description, data_type=data_type, task=task, library=library,
        scenario=scenario, license=license, output_dim=output_dim,
    ) or {}  # fmt: skip
    if Semantic.from_dict(semantic).data_type is None:  # neither --data-type nor the file says: a table
        semantic = semantic_from_options(None, base=semantic, data_type="Table") or {}
    data_type = Semantic.from_dict(semantic).data_type
    options = PackOptions(
        data_type=data_type, requirements=tuple(requirement) if requirement is not None else None, gamma=gamma, K=k,
        seed=seed, max_samples=max_samples, output=predict_output, embedder=embedder, text_field=text_field,
    )  # fmt: skip
    summary = do_pack(model, out, semantic, train_data=data, spec_file=spec, options=options)
    sink = output(ctx, json)
    sink.result(summary.to_dict(), human=lambda d: sink.line(d["path"]), ids=[summary.id])


def register(app: typer.Typer) -> None:
    app.command()(pack)
