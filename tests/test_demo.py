"""`make demo` end to end: the example script in a subprocess, on a temporary dock, output piped (plain)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"

pytestmark = pytest.mark.slow  # the whole demo in a subprocess: `make test` runs it, `make test-fast` does not


def _section(text: str, number: str) -> list[str]:
    """The lines of the demo step ``number`` (up to the next ``== `` header)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"== {number}."))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("== ")), len(lines))
    return lines[start:end]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    dock = tmp_path_factory.mktemp("demo") / "dock"
    env = {**os.environ, "LWDOCK_NO_PROGRESS": "1", "LWDOCK_HOME": str(dock.parent / "unused")}
    proc = subprocess.run([sys.executable, str(DEMO), "--dock", str(dock)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, dock


def test_submits_every_sample_as_usable(demo_output):
    out, dock = demo_output
    rows = [line.split() for line in _section(out, "2")[3:] if line.strip()]
    zips = sorted(p.stem for p in (ROOT / "sample_learnwares").glob("*.zip"))
    assert sorted(r[0] for r in rows) == zips
    for r in rows:
        assert r[-1] == "usable", r
        passed, total = map(int, r[-2].split("/"))
        assert passed == total > 0
    assert (dock / "dock.json").is_file()  # --dock was used, and the dock is kept


def test_search_finds_the_matching_learnware_first(demo_output):
    out, _ = demo_output
    sec = _section(out, "4")
    singles = [line.split() for line in sec if re.match(r"^\d+\s+\S+\s+[\d.]+\s+[\d.]+$", line)]
    assert [int(r[0]) for r in singles] == list(range(1, len(singles) + 1))
    # the user's rows are 80% digits 2-5, 60% of them 2 and 3: digits-2345 is the closest training distribution
    assert singles[0][1] == "digits-2345"
    scores = [float(r[2]) for r in singles]
    assert scores == sorted(scores, reverse=True)  # ranked by score (docs/search.md)
    mmd = [float(r[3]) for r in singles]
    assert "iris" not in {r[1] for r in singles}  # 4 features: never compared with 64-pixel data
    mix_header = next(line for line in sec if line.startswith("best mixture"))
    mix_mmd = float(re.search(r"MMD² ([\d.]+)", mix_header).group(1))
    assert mix_mmd < min(mmd)  # a mixture is only reported when it explains the data better


def test_reuse_beats_the_naive_choices(demo_output):
    out, _ = demo_output
    acc = {}
    for line in _section(out, "7"):
        m = re.match(r"^(\S.*?)\s{2,}.*?\s(\d\.\d{4})$", line)
        if m:
            acc[m.group(1)] = float(m.group(2))
    mean = acc["Mean in market"]
    best = next(v for k, v in acc.items() if k.startswith("Best in market"))
    top1 = next(v for k, v in acc.items() if k.startswith("Top-1"))
    assert 0 < mean < best <= 1
    assert top1 == best  # the search's first hit is the best single learnware here
    assert acc["Job selector (mixture)"] > mean + 0.2
    assert acc["Average ensemble (mixture)"] > mean + 0.2
    fa = next(v for k, v in acc.items() if k.startswith("Feature augmentation"))
    self_trained = next(v for k, v in acc.items() if k.startswith("Self-trained"))
    assert fa > mean and self_trained > mean
    assert re.search(r"done in [\d.]+ s", out)
