"""Progress bars: rich on the command line, tqdm.auto in the Python API, none where nobody watches."""

from __future__ import annotations

import pytest

from lwdock import progress


@pytest.fixture
def watched(monkeypatch, capsys):
    """stderr is a terminal and progress is allowed; returns a reader of what reached stderr."""
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: True)
    monkeypatch.delenv("LWDOCK_NO_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_forced_off", False)
    monkeypatch.setattr(progress, "_renderer", "tqdm")
    return lambda: capsys.readouterr().err


def test_python_api_draws_with_tqdm(watched):
    assert list(progress.track(range(7), 7, "fitting specs")) == list(range(7))
    text = watched()
    assert "fitting specs" in text and "/7 [" in text  # tqdm's counter and timer


def test_cli_draws_with_rich(watched, monkeypatch):
    monkeypatch.setattr(progress, "_renderer", "rich")
    with progress.bar(4, "predict") as b:
        assert isinstance(b, progress._RichBar)
        b.advance(4)
    assert "/4 [" not in watched()


def test_nobody_watching_means_no_bar(watched, monkeypatch):
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: False)
    with progress.bar(3, "quiet") as b:
        b.advance(3)
    assert watched() == ""
    monkeypatch.setattr(progress, "_in_notebook", lambda: True)  # a notebook watches, through tqdm
    assert progress.enabled()
    progress.use_rich()
    try:
        assert not progress.enabled()  # a CLI run inside a kernel has no terminal to draw on
    finally:
        progress.use_rich(False)
    monkeypatch.setenv("LWDOCK_NO_PROGRESS", "1")
    assert not progress.enabled()
