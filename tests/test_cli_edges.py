"""Issue 15's leftovers, through the installed ``lwdock`` console script.

Bad numbers in a spec file are one ``error:`` line with exit 7 (not a silent ranking), ...
Each test builds a small dock of factory learnwares through the Python API (no checks run),
then drives the real console script in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from _factory import learnware_zip, spec_dict
from lwdock import Dock


@pytest.fixture
def small(tmp_path):
    """A dock with two 4-column factory learnwares, and a runner of the console script on it."""
    dock = Dock.init(tmp_path / "dock")
    ids = [dock.submit(learnware_zip(tmp_path / f"{s}.zip", seed=s, d=4), run_model=False).id for s in (0, 1)]
    return tmp_path, ids


def run(lwdock_bin: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([lwdock_bin, "--dock", str(cwd / "dock"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def one_error(p: subprocess.CompletedProcess[str], code: int) -> str:
    """The one ``error:`` line of a failed command (an optional ``hint:`` line may follow)."""
    lines = p.stderr.splitlines()
    assert p.returncode == code, (p.returncode, p.stderr)
    assert p.stdout == "" and 1 <= len(lines) <= 2 and lines[0].startswith("error: "), p.stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), p.stderr
    assert "Traceback" not in p.stderr and "Warning" not in p.stderr
    return lines[0]


# -- 1, 2: spec files whose numbers cannot give a meaningful distance ------------------------
def _spec(path: Path, **changes) -> Path:  # type: ignore[no-untyped-def]
    data = spec_dict(d=4, seed=3)
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("changes", "words"), [
    ({"beta": [0.0] * 5}, "positive sum"),
    ({"beta": [-0.2] * 5}, "positive sum"),
    ({"beta": [0.5, 0.5, -0.5, -0.5, -0.1]}, "positive sum"),
    ({"beta": [0.2, 0.2, float("nan"), 0.2, 0.2]}, "NaN or Inf"),
    ({"z": [[float("inf")] * 4] + [[0.0] * 4] * 4}, "NaN or Inf"),
    ({"gamma": 1e308}, "too large"),
    ({"gamma": float("inf")}, "gamma"),
    ({"z": [[1e200] * 4] + [[0.0] * 4] * 4}, "too large"),
])
def test_a_spec_with_unusable_numbers_is_one_error(small, lwdock_bin, changes, words):
    root, _ = small
    spec = _spec(root / "bad.json", **changes)
    for args in (("search", "--spec", "bad.json", "--include-unchecked"), ("spec", "show", "bad.json")):
        line = one_error(run(lwdock_bin, root, *args), 7)
        assert "bad.json" in line and words in line, line


def test_a_good_spec_still_ranks_and_gamma_large_but_safe_is_quiet(small, lwdock_bin):
    root, ids = small
    for gamma in (0.1, 1e250):  # 1e250: every kernel value underflows to 0, but nothing overflows
        _spec(root / "ok.json", gamma=gamma)
        p = run(lwdock_bin, root, "search", "--spec", "ok.json", "--include-unchecked", "-q")
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.split()) == sorted(ids)
        assert "overflow" not in p.stderr and "RuntimeWarning" not in p.stderr
