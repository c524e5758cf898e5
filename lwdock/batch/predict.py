"""Batch predict: one saved ensemble over many input files, its workers started once.

``lwdock predict E.lwe A.csv B.csv -o out/`` writes ``out/A.csv`` and ``out/B.csv``;
``-o -`` writes CSV to stdout (one header, then the rows of every input in order); an input
``-`` is read from stdin. Each learnware's sandboxed worker starts once for the whole call,
so N files cost one start-up, not N.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .._scratch import new_dir
from ..errors import UsageError
from ..reuse.api import load_ensemble
from ..reuse.data import load_input, write_predictions
from ..reuse.execute import DEFAULT_CHUNK

STDIO = "-"
SUFFIXES = (".csv", ".tsv", ".txt", ".npy")
NPY_MAGIC = b"\x93NUMPY"


def plan_outputs(inputs: Sequence[str], output: str) -> list[str]:
    """The output of each input: a file, ``-`` (stdout), or ``DIR/<input stem>.csv``.

    A directory is meant when ``output`` ends with ``/``, is an existing directory, or there
    are several inputs.
    """
    if not inputs:
        raise UsageError("no input files given")
    if inputs.count(STDIO) > 1:
        raise UsageError("stdin (-) can be read only once")
    if output == STDIO:
        return [STDIO] * len(inputs)
    if output.endswith("/") or Path(output).is_dir() or len(inputs) > 1:
        if Path(output).exists() and not Path(output).is_dir():
            raise UsageError(f"output {output} is a file, but several inputs need a directory")
        names = [("stdin" if i == STDIO else Path(i).stem) + ".csv" for i in inputs]
        clash = next((n for n in names if names.count(n) > 1), None)
        if clash:
            raise UsageError(f"two inputs would both be written to {clash} in {output}")
        return [str(Path(output) / n) for n in names]
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"cannot write predictions as {suffix or '(no suffix)'!r}",
                         hint="use .csv or .npy, a directory ending in /, or - for stdout")
    return [output]


def predict_files(dock: Any, ensemble: str | os.PathLike[str], inputs: Sequence[str], output: str, *,
                  trusted: bool = False, proba: bool = False, chunk_size: int = DEFAULT_CHUNK,
                  text_field: str | None = None, stdin: IO[bytes] | None = None,
                  stdout: IO[str] | None = None) -> dict[str, Any]:
    """Apply a saved ``.lwe`` ensemble to every input; see the module doc. Returns a summary."""
    outputs = plan_outputs(list(inputs), output)
    t0 = time.perf_counter()
    scratch = new_dir(dock.layout.tmp, "predict")
    try:
        files = []
        with load_ensemble(ensemble, dock, trusted=trusted) as ens:
            kind = ens.input_schema.get("kind", "table")
            for i, (src, dest) in enumerate(zip(inputs, outputs)):
                path = _stdin_file(scratch, kind, stdin) if src == STDIO else Path(src)
                X = load_input(path, kind, text_field)
                if proba and ens.reuser.task_ == "classification":
                    pred, pr = ens.predict_with_proba(X, chunk_size=chunk_size)
                else:
                    pred, pr = ens.predict(X, chunk_size=chunk_size), None
                if dest == STDIO:
                    tmp = write_predictions(scratch / f"out-{i}.csv", pred, pr, ens.classes)
                    _copy_csv(tmp, stdout or sys.stdout, header=i == 0)
                else:
                    Path(dest).parent.mkdir(parents=True, exist_ok=True)
                    write_predictions(dest, pred, pr, ens.classes)
                files.append({"input": src, "output": dest, "rows": int(len(pred))})
            method, ids = ens.method, ens.ids
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"ensemble": str(ensemble), "method": method, "learnwares": ids, "files": files,
            "rows": sum(f["rows"] for f in files), "output": output, "seconds": round(time.perf_counter() - t0, 3)}


def _stdin_file(scratch: Path, kind: str, stdin: IO[bytes] | None) -> Path:
    """Stdin as a file the loaders read: ``.npy`` when it starts like one, else text (CSV, or lines of text)."""
    data = (stdin or sys.stdin.buffer).read()
    suffix = ".npy" if data.startswith(NPY_MAGIC) else (".txt" if kind == "text" else ".csv")
    path = scratch / f"stdin{suffix}"
    path.write_bytes(data)
    return path


def _copy_csv(path: Path, out: IO[str], *, header: bool) -> None:
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        if header:
            out.write(first)
        shutil.copyfileobj(fh, out)
    out.flush()
