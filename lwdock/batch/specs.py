"""Bulk spec fitting: ``lwdock spec table A.csv B.csv ... -o DIR/`` on an executor.

Each input is fitted as ``lwdock spec table`` fits one file (:func:`lwdock.spec.api.build_table_spec`,
the same seed for every file), so the specs are the same bytes whichever executor ran them: threads
of this process (``local``) or a Dask cluster (``dask``; docs/batch.md). Every input is tried; the
error of the first that failed (in argument order) is raised after the others are written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..spec.api import build_table_spec
from .executors import Executor, LocalExecutor

__all__ = ["fit_table_specs", "plan_spec_outputs"]


def plan_spec_outputs(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]) -> list[Path]:
    """The file ``output`` itself for one input (unless it ends with ``/``); otherwise
    ``DIR/<input stem>.json`` for each input."""
    if not inputs:
        raise UsageError("no data files given")
    out = Path(output)
    if len(inputs) == 1 and not str(output).endswith("/"):
        return [out]
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {output} is a file, but several inputs need a directory")
    names = [f"{Path(i).stem}.json" for i in inputs]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash:
        raise UsageError(f"two inputs would both be written to {clash} in {output}")
    return [out / n for n in names]


def fit_table_specs(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *,
                    executor: Executor | None = None, **params: Any) -> list[dict[str, Any]]:
    """Fit a table spec per input with ``params`` (those of ``build_table_spec``); one summary per input, in order."""
    outputs = plan_spec_outputs(inputs, output)
    if len(outputs) > 1 or str(output).endswith("/"):
        outputs[0].parent.mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor()
    work = [(str(i), str(o)) for i, o in zip(inputs, outputs)]
    results: list[Any] = [None] * len(work)
    for pos, res in executor.imap(partial(_fit_one, params), work):
        results[pos] = res
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    return results


def _fit_one(params: dict[str, Any], item: tuple[str, str]) -> dict[str, Any]:
    data, out = item
    return build_table_spec(data, out, **params)
