"""Statistical specification commands: ``lwdock spec table|image|text`` and ``lwdock spec show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import load_settings
from ._options import POINTS_HELP, points_option
from ._state import JsonOpt, output

spec_app = typer.Typer(
    name="spec",
    help="Build and inspect RKME statistical specifications.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DeviceOpt = Annotated[
    Optional[str], typer.Option("--device", help="cpu or cuda (default: $LWDOCK_DEVICE, else cpu).", show_default=False)
]


def _device(device: Optional[str]) -> str:
    return device or load_settings().device


def table(
    ctx: typer.Context,
    data: Annotated[list[Path], typer.Argument(
        metavar="DATA...", help="Training data: .npy, .npz (array X) or .csv (header detected); several files "
        "are fitted in parallel, one spec each in the -o directory.")],
    out_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write the spec JSON (a directory "
                                           "DIR/ for several files: DIR/<file stem>.json).")],
    k: Annotated[int, points_option(POINTS_HELP)] = 100,
    gamma: Annotated[
        Optional[float],
        typer.Option("--gamma", help="Experts only: fit with this RBF gamma on raw units. Default: standardised "
                     "columns and the median heuristic (no kernel knowledge needed).", show_default=False),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Optimisation rounds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    device: DeviceOpt = None,
    max_samples: Annotated[
        Optional[int], typer.Option("--max-samples", help="Fit on at most this many rows (seeded subsample).")
    ] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Files fitted at once (default: the cores).",
                                                show_default=False)] = None,
    executor: Annotated[str, typer.Option("--executor", help="Where several files are fitted: local (threads) or "
                                          "dask (DASK_SCHEDULER_ADDRESS, else a local cluster; docs/batch.md).")] = "local",
    json: JsonOpt = False,
) -> None:
    """Build a table RKME specification from DATA and write it to -o (several files: one spec each)."""
    from ..batch.executors import make_executor
    from ..batch.specs import fit_table_specs

    out = output(ctx, json)
    params = dict(K=k, gamma=gamma, steps=steps, random_state=seed, device=_device(device), max_samples=max_samples)
    engine = make_executor(executor, jobs if len(data) > 1 else 1)
    try:
        results = fit_table_specs(data, out_path, executor=engine, **params)
    finally:
        engine.close()
    human = _wrote(out, "K={K} d={dim} fit on {fit_units} columns with gamma {fit_gamma:.3g}", unit="rows")
    out.result(results[0] if len(results) == 1 else results,
               human=lambda d: [human(r) for r in (d if isinstance(d, list) else [d])])


def _wrote(out: Any, what: str, unit: str = "items"):  # type: ignore[no-untyped-def]
    def human(d: dict[str, Any]) -> None:
        out.info(f"wrote {d['path']}: {what.format(**d)} from {d['num_points']} {unit} in {d['fit_seconds']:.3g}s")

    return human


def image(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Images: N x C x H x W (or N x H x W grey) in .npy or .npz.")],
    out_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write the spec JSON.")],
    k: Annotated[int, points_option("Number of synthetic images.")] = 50,
    steps: Annotated[int, typer.Option("--steps", help="Optimisation rounds.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    device: DeviceOpt = None,
    max_samples: Annotated[
        int, typer.Option("--max-samples", help="Fit on at most this many images (seeded subsample).")
    ] = 5000,
    no_whitening: Annotated[bool, typer.Option("--no-whitening", help="Skip ZCA whitening (C > 1).")] = False,
    json: JsonOpt = False,
) -> None:
    """Build an image RKME specification from N x C x H x W images and write it to -o."""
    from ..spec.api import build_image_spec

    out = output(ctx, json)
    result = build_image_spec(data, out_path, K=k, steps=steps, random_state=seed, device=_device(device),
                              max_samples=max_samples, whitening=not no_whitening)
    out.result(result, human=_wrote(out, "K={K} shape={shape}"))


def text(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Texts: .txt (one per line), .csv or .jsonl (--column).")],
    out_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write the spec JSON.")],
    column: Annotated[Optional[str], typer.Option(
        "--column", help="The .csv column (header name) or .jsonl field holding the text.")] = None,
    field: Annotated[Optional[str], typer.Option("--field", hidden=True, help="Old spelling of --column.")] = None,
    k: Annotated[int, points_option(POINTS_HELP)] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    embedder: Annotated[
        str, typer.Option("--embedder", help="all-MiniLM-L6-v2 (needs lwdock[text]) or hashing-384 (built in, lower quality).")
    ] = "all-MiniLM-L6-v2",
    device: DeviceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Build a text RKME specification (sentence embeddings + table RKME) and write it to -o."""
    from ..spec.api import build_text_spec

    out = output(ctx, json)
    result = build_text_spec(data, out_path, field=column or field, column=column or field, K=k, random_state=seed,
                             embedder=embedder, device=_device(device))
    out.result(result, human=_wrote(out, "K={K} d={dim} embedder={embedder}"))


def show(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Spec JSON file.")],
    data: Annotated[
        Optional[Path], typer.Option("--data", help="Training data: also report the raw-row leak figure.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Summarise a spec file (and, with --data, how close its points come to raw rows)."""
    from ..spec.api import describe_spec

    out = output(ctx, json)
    result = describe_spec(spec, data)

    def human(d: dict[str, Any]) -> None:
        for key in ("path", "type", "dim", "shape", "K", "gamma", "fit_units", "fit_gamma", "spec_quality", "kernel",
                    "whitened", "embedder", "embedding_dim", "num_points", "beta_min", "beta_max", "beta_nonzero",
                    "self_inner"):
            if key not in d:
                continue
            v = d.get(key)
            out.line(f"{key:<13} {v:.6g}" if isinstance(v, float) else f"{key:<13} {v}")
        leak = d.get("leak")
        if leak is not None:
            if leak["fraction"] is None:
                out.line("leak          n/a (one data row)")
            else:
                out.line(f"leak          {leak['count']}/{leak['points']} points ({100 * leak['fraction']:.1f}%) "
                         f"within {leak['threshold']:g} x median NN distance ({leak['median_nn_distance']:.4g}) "
                         f"of a raw row")

    out.result(result, human=human)


def register(app: typer.Typer) -> None:
    spec_app.command("table")(table)
    spec_app.command("image")(image)
    spec_app.command("text")(text)
    spec_app.command("show")(show)
    app.add_typer(spec_app, name="spec")
