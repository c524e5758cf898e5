"""Batch predict: one saved ensemble over many input files, its workers started once.

``lwdock predict E.lwe A.csv B.csv -o out/`` writes ``out/A.csv`` and ``out/B.csv``;
``-o -`` writes CSV to stdout (one header, then the rows of every input in order); an input
``-`` is read from stdin. Each learnware's sandboxed worker starts once for the whole call,
so N files cost one start-up, not N.

Tables stream: a CSV/TSV input is read ``chunk_size`` rows at a time (its header once), a
``.npy`` input is memory-mapped, and each chunk's predictions are written before the next
chunk is read, so memory stays flat however large the file. A CSV output is written beside its
destination and renamed when complete, so a failed input leaves no half-written file (on
stdout, the rows written before the failure stay written; the exit code says it failed).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .. import progress
from .._scratch import new_dir
from ..errors import UsageError
from ..reuse.api import load_ensemble
from ..reuse.data import iter_input, write_predictions
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
                chunks = iter_input(path, kind, text_field, chunk_size)
                if dest == STDIO:
                    rows = _predict_to_stdout(ens, chunks, scratch, stdout or sys.stdout, proba=proba,
                                              chunk_size=chunk_size, header=i == 0)
                else:
                    rows = _predict_to_file(ens, chunks, Path(dest), proba=proba, chunk_size=chunk_size)
                files.append({"input": src, "output": dest, "rows": rows})
            method, ids = ens.method, ens.ids
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"ensemble": str(ensemble), "method": method, "learnwares": ids, "files": files,
            "rows": sum(f["rows"] for f in files), "output": output, "seconds": round(time.perf_counter() - t0, 3)}


def _predict_chunk(ens: Any, X: Any, *, proba: bool, chunk_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    if proba and ens.reuser.task_ == "classification":
        return ens.predict_with_proba(X, chunk_size=chunk_size)
    return ens.predict(X, chunk_size=chunk_size), None


def _predict_to_file(ens: Any, chunks: Any, dest: Path, *, proba: bool, chunk_size: int) -> int:
    """Predictions of every chunk into ``dest``: CSV rows appended chunk by chunk to a temp file
    beside it, renamed when all are written; ``.npy`` saved once (it cannot be appended)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() == ".npy":
        parts = [_predict_chunk(ens, X, proba=proba, chunk_size=chunk_size) for X in chunks]
        pred = np.concatenate([p for p, _ in parts])
        pr = np.concatenate([q for _, q in parts]) if parts[0][1] is not None else None
        write_predictions(dest, pred, pr, ens.classes)
        return int(len(pred))
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.part{dest.suffix}"
    try:
        rows = 0
        with progress.bar(None, f"predict {dest.name}") as bar:
            for X in chunks:
                pred, pr = _predict_chunk(ens, X, proba=proba, chunk_size=chunk_size)
                write_predictions(tmp, pred, pr, ens.classes, header=rows == 0, append=rows > 0)
                rows += len(pred)
                bar.advance(len(pred))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def _predict_to_stdout(ens: Any, chunks: Any, scratch: Path, out: IO[str], *, proba: bool, chunk_size: int,
                       header: bool) -> int:
    """Predictions of every chunk as CSV on ``out``: the header only when ``header`` (the first input)."""
    rows = 0
    tmp = scratch / "chunk.csv"
    with progress.bar(None, "predict") as bar:
        for X in chunks:
            pred, pr = _predict_chunk(ens, X, proba=proba, chunk_size=chunk_size)
            write_predictions(tmp, pred, pr, ens.classes)
            _copy_csv(tmp, out, header=header and rows == 0)
            rows += len(pred)
            bar.advance(len(pred))
    return rows


def _stdin_file(scratch: Path, kind: str, stdin: IO[bytes] | None) -> Path:
    """Stdin copied to a file the loaders read (in blocks: it may be larger than memory):
    ``.npy`` when it starts like one, else text (CSV, or lines of text)."""
    src = stdin or sys.stdin.buffer
    start = src.read(len(NPY_MAGIC))
    suffix = ".npy" if start == NPY_MAGIC else (".txt" if kind == "text" else ".csv")
    path = scratch / f"stdin{suffix}"
    with open(path, "wb") as fh:
        fh.write(start)
        shutil.copyfileobj(src, fh, 1 << 20)
    return path


def _copy_csv(path: Path, out: IO[str], *, header: bool) -> None:
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        if header:
            out.write(first)
        shutil.copyfileobj(fh, out)
    out.flush()
