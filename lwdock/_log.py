"""Logging setup: every log line goes to stderr."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("lwdock")


def configure(debug: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.INFO)
    logger.setLevel(level)
    if not any(getattr(h, "_lwdock", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        handler._lwdock = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


class _Formatter(logging.Formatter):
    """``warning: ...`` for warnings (as the CLI writes its own); other levels as they are."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"warning: {text}" if record.levelno == logging.WARNING and not text.startswith("warning:") else text
