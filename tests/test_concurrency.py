"""Many processes on one dock: every submit lands and the index stays valid."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from _factory import learnware_zip
from lwdock import Dock

N_PROCS = 4
PER_PROC = 25

SCRIPT = """
import sys

import pytest
from lwdock import Dock
dock = Dock.open(sys.argv[1])
for z in sys.argv[2:]:
    dock.submit(z, run_model=False)
"""


@pytest.mark.slow
def test_parallel_submits_all_land(tmp_path):
    dock = Dock.init(tmp_path / "dock")
    batches = []
    for p in range(N_PROCS):
        zips = [str(learnware_zip(tmp_path / f"z{p}_{i}.zip", seed=1000 * p + i)) for i in range(PER_PROC)]
        batches.append(zips)
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, str(dock.path), *zips], stderr=subprocess.PIPE)
        for zips in batches
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    entries = dock.entries()
    assert len(entries) == N_PROCS * PER_PROC
    assert len({e.id for e in entries}) == N_PROCS * PER_PROC
    for f in dock.layout.index_dir.glob("*.json"):
        json.loads(f.read_text())  # still valid JSON
    assert dock.doctor(repair=False).ok


@pytest.mark.slow
def test_parallel_cli_submit_and_remove(tmp_path, lwdock_bin):
    dock = Dock.init(tmp_path / "dock")
    zips = [str(learnware_zip(tmp_path / f"c{i}.zip", seed=500 + i)) for i in range(8)]
    first = [subprocess.Popen([lwdock_bin, "--dock", str(dock.path), "submit", "--no-run", "-q", z],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for z in zips]  # fmt: skip
    ids = []
    for p in first:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        ids.append(out.decode().strip())
    removers = [subprocess.Popen([lwdock_bin, "--dock", str(dock.path), "remove", "--yes", i],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in ids[:4]]  # fmt: skip
    for p in removers:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert sorted(e.id for e in dock.entries()) == sorted(ids[4:])
    assert dock.doctor(repair=False).ok
