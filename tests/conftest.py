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
    from lwdock import Dock

    return Dock.init(tmp_path / "dock")


@pytest.fixture(scope="session")
def image_market():
    """Digits learnwares with image specs (fitted once per run: about 4 s). Read-only."""
    from _dense_market import ImageMarket

    return ImageMarket(seed=0)


@pytest.fixture(scope="session")
def text_market():
    """Topic learnwares with text specs on the offline hashing embedder. Read-only."""
    from _dense_market import TextMarket

    return TextMarket(embedder="hashing-384")


@pytest.fixture
def lwdock_bin():
    exe = Path(sys.executable).parent / "lwdock"
    if not exe.exists():
        pytest.skip("lwdock console script not installed")
    return str(exe)


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")
