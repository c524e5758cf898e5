"""lwdock: a learnware dock you can run from a shell, and its Python API.

The layers (docs/CONTRIBUTING.md): records and format at the bottom, then spec, check,
store, search and reuse; ``lwdock.api`` composes them and the CLI sits on top.
Heavy modules load lazily, so importing ``lwdock`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Dock": ("lwdock.api", "Dock"),
    "Entry": ("lwdock.records", "Entry"),
    "RKMETableSpec": ("lwdock.spec.rkme_table", "RKMETableSpec"),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .api import Dock  # noqa: F401
    from .records import Entry  # noqa: F401
    from .spec.rkme_table import RKMETableSpec  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lwdock' has no attribute {name!r}")
