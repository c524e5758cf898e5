"""Shared helpers for benchmarks: machine info, timing, and result files.

Every benchmark script calls :func:`report`, which prints a table, writes
``benchmarks/results/<name>.json`` and a markdown fragment
``benchmarks/results/<name>.md`` that ``run_all.py`` gathers into
``docs/benchmarks.md``. Compare ratios within one run: absolute times on shared
machines are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _bytecode_as_installed() -> None:
    """Cold-process figures as a user's machine gives them: an installed package runs from
    compiled bytecode, while a development shell with PYTHONDONTWRITEBYTECODE=1 recompiles every
    lwdock module in every process (~0.4 s of a cold `lwdock search` on 2 busy cores). Compile
    once, and let the benchmarks' child processes read the bytecode."""
    import compileall

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    try:
        import lwdock
    except ImportError:
        return
    compileall.compile_dir(str(Path(lwdock.__file__).parent), quiet=1)


_bytecode_as_installed()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("numpy", "scipy", "torch", "sklearn", "cvxopt", "tinydb", "typer"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing module is just not reported
            pass
    try:
        import lwdock

        versions["lwdock"] = lwdock.__version__
    except ImportError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "versions": versions}


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0 / 1024.0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def report(
    name: str,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    notes: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Print the table to stdout and write JSON + a markdown fragment."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = machine()
    payload = {"name": name, "title": title, "machine": info, "rows": list(rows), "notes": notes, **(extra or {})}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    table = markdown_table(rows, columns)
    md = f"## {title}\n\n{notes.strip()}\n\n{table}\n" if notes.strip() else f"## {title}\n\n{table}\n"
    (RESULTS / f"{name}.md").write_text(md)
    print(f"\n== {title} ==")
    print(table)
    return payload
