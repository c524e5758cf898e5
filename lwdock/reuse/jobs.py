"""File-level reuse jobs behind ``lwdock reuse`` and ``lwdock predict``.

Each takes paths, does the whole job and returns plain data for the output sink.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..errors import UsageError
from .api import METHODS, reuse, selection_input_kind
from .data import load_input, load_labeled, write_predictions
from .execute import DEFAULT_CHUNK


def reuse_job(
    dock: Any,
    selection: Any,
    method: str = "average",
    *,
    labeled: str | os.PathLike[str] | None = None,
    label_column: str | None = None,
    data: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    predictions: str | os.PathLike[str] | None = None,
    trusted: bool = False,
    seed: int = 0,
    proba: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    params: dict[str, Any] | None = None,
    text_field: str | None = None,
) -> dict[str, Any]:
    """Build an ensemble; save it to ``output``; predict ``data`` when given.

    ``data`` is read as the learnwares' input kind: table rows, images (N x C x H x W .npy)
    or texts (.txt lines; ``text_field`` names the .jsonl field or .csv column).
    """
    if method not in METHODS:
        raise UsageError(f"unknown reuse method {method!r}", hint=f"choose one of {', '.join(METHODS)}")
    if output is None and data is None:
        raise UsageError("nothing to do: give -o ENSEMBLE.lwe to save the ensemble and/or --data FILE to predict")
    t0 = time.perf_counter()
    lab = load_labeled(labeled, label_column) if labeled is not None else None
    kind = selection_input_kind(dock, selection) if data is not None else "table"
    Xd = load_input(data, kind, text_field) if data is not None else None
    with reuse(dock, selection, method, lab, data=Xd, trusted=trusted, random_state=seed, **(params or {})) as ens:
        result = ens.describe()
        if output is not None:
            result["output"] = str(ens.save(output))
        if Xd is not None:
            if proba and ens.reuser.task_ == "classification":
                pred, pr = ens.predict_with_proba(Xd, chunk_size=chunk_size)
            else:
                pred, pr = ens.predict(Xd, chunk_size=chunk_size), None
            result["n_predicted"] = int(len(pred))
            if predictions is not None:
                result["predictions_file"] = str(write_predictions(predictions, pred, pr, ens.classes))
            else:
                result["predictions"] = pred.tolist()
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result

