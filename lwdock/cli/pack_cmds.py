"""``lwdock pack``: build a learnware zip from a model (scikit-learn, torch, or a wrapper module) and its training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ._options import (
    DescriptionOpt,
    LibraryOpt,
    LicenseOpt,
    NameOpt,
    OutputDimOpt,
    ScenarioOpt,
    SemanticFileOpt,
    TaskOpt,
    comma_list,
    json_object,
    points_option,
    semantic_flags,
    semantic_from_options,
)
from ._state import JsonOpt, output


def pack(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("-o", "--output", help="Learnware zip to write.")],
    folder: Annotated[
        Optional[Path],
        typer.Argument(metavar="DIR", help="A learnware folder in the documented layout (learnware.yaml, model "
                       "module, spec file, requirements) to zip as it is, instead of --model/--module and --data.",
                       show_default=False),
    ] = None,
    model: Annotated[
        Optional[Path],
        typer.Option("--model", help="The model: a pickled/joblib scikit-learn estimator or Pipeline, a TorchScript "
                     "file (torch.jit.save), or torch weights (torch.save) with --module defining the network."),
    ] = None,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", help="Training data for the RKME spec: Table .npy/.npz/.csv (a header names the "
                     "columns); Image N x C x H x W .npy/.npz; Text .txt (one per line), .jsonl or .csv (with --column)."),
    ] = None,
    label_column: Annotated[
        Optional[str],
        typer.Option("--label-column", help="The label column of --data (a header name or a 0-based index): left out of "
                     "the spec; a classifier's labels become its classes (strings are fine)."),
    ] = None,
    classes: Annotated[
        Optional[list[str]],
        typer.Option("--classes", help="A classifier's labels in the order of its outputs (comma-separated or "
                     "repeated; default: the labels of --label-column, sorted)."),
    ] = None,
    module: Annotated[
        Optional[Path],
        typer.Option("--module", help="Your wrapper module (a class with input_shape, output_shape and predict), or "
                     "the module defining a torch network whose weights --model holds."),
    ] = None,
    include: Annotated[
        Optional[list[Path]],
        typer.Option("--include", help="A file or folder the module needs (repeatable)."),
    ] = None,
    class_name: Annotated[
        Optional[str], typer.Option("--class-name", help="The class in --module to use (default: Model, or the only one).")
    ] = None,
    model_kwargs: Annotated[
        Optional[str], typer.Option("--model-kwargs", help="JSON object passed to the --module class (or network class).")
    ] = None,
    data_type: Annotated[
        Optional[str], typer.Option("--data-type", help="Table, Image or Text: picks the spec and the model wrapper "
                                    "(default: the --semantic file's Data, else Table).")
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
        typer.Option("--requirement", "-r", help="pip requirement (repeatable; default: pins of what the model needs).",
                     show_default=False),
    ] = None,
    predict_output: Annotated[
        str, typer.Option("--predict-output", help="Classifiers: auto (probabilities if available), labels or proba.")
    ] = "auto",
    gamma: Annotated[
        Optional[float],
        typer.Option("--gamma", help="Experts only: fit the table spec with this RBF gamma on raw units "
                     "(default: automatic, scale-free; the dock compares every spec under its own kernel).",
                     show_default=False),
    ] = None,
    k: Annotated[
        Optional[int], points_option("Reduced-set size (default 100; 50 for Image).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Subsample the data first.")] = None,
    json: JsonOpt = False,
) -> None:
    """Build a learnware zip: model wrapper, learnware.yaml, requirements, specs (docs/packaging.md)."""
    from ..format.folder import pack_folder
    from ..format.pack import PackOptions
    from ..format.pack import pack as do_pack

    flags = dict(name=name, description=description, data_type=data_type, task=task, library=library,
                 scenario=scenario, license=license, output_dim=output_dim)
    if folder is not None:
        given = [flag for flag, v in (("--model", model), ("--data", data), ("--spec", spec), ("--module", module),
                                      ("--include", include), ("--label-column", label_column)) if v]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be used with a folder (DIR): it is zipped as it is")
        summary = pack_folder(folder, out, semantic_file=semantic_file, semantic_flags=semantic_flags(**flags))
    else:
        semantic = semantic_from_options(semantic_file, **flags) or {}
        options = PackOptions(
            data_type=data_type, requirements=tuple(requirement) if requirement is not None else None, gamma=gamma,
            K=k, seed=seed, max_samples=max_samples, output=predict_output, embedder=embedder, text_field=text_field,
            label_column=label_column, classes=comma_list(classes), module=module, include=tuple(include or ()),
            class_name=class_name, model_kwargs=json_object(model_kwargs, "--model-kwargs"),
        )  # fmt: skip
        summary = do_pack(model, out, semantic, train_data=data, spec_file=spec, options=options)
    sink = output(ctx, json)
    sink.result(summary.to_dict(), human=lambda d: sink.line(d["path"]), ids=[summary.id])


def register(app: typer.Typer) -> None:
    app.command()(pack)
