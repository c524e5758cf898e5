"""Shared fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # never touch the user's real dock; no progress bars in test output
    monkeypatch.setenv("LWDOCK_HOME", str(tmp_path / "default-dock"))
    monkeypatch.setenv("LWDOCK_NO_PROGRESS", "1")
    monkeypatch.delenv("LWDOCK_FAULT", raising=False)
    yield


@pytest.fixture
def dock(tmp_path):
    from lwdock.store.dock import Dock

    return Dock.init(tmp_path / "dock")


@pytest.fixture
def lwdock_bin():
    exe = Path(sys.executable).parent / "lwdock"
    if not exe.exists():
        pytest.skip("lwdock console script not installed")
    return str(exe)


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")
