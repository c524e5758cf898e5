"""Run every ``benchmarks/bench_*.py`` and gather the tables into docs/benchmarks.md.

Usage: python benchmarks/run_all.py [name ...]   (names without the bench_ prefix)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, machine  # noqa: E402


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = {f"bench_{a}.py" for a in argv}
        scripts = [s for s in scripts if s.name in wanted]
    failed = []
    for script in scripts:
        t0 = time.perf_counter()
        print(f"\n### {script.name}", flush=True)
        # each benchmark in its own process, so peak memory figures are its own
        rc = subprocess.call([sys.executable, str(script)], cwd=ROOT)
        print(f"### {script.name}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    write_doc()
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def write_doc() -> None:
    info = machine()
    intro_file = HERE / "INTRO.md"
    parts = [intro_file.read_text().rstrip() + "\n"] if intro_file.exists() else ["# Benchmarks\n"]
    parts.append(
        f"Machine: {info['cores']} cores, {info['cpu']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + "\n"
    )
    for md in sorted(RESULTS.glob("*.md")):
        parts.append(md.read_text())
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
