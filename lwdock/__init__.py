"""lwdock: a learnware dock you can run from a shell, and its Python API.

The layers (docs/CONTRIBUTING.md): records and format at the bottom, then spec, check,
store, search and reuse; ``lwdock.api`` composes them and the CLI sits on top.
Heavy modules load lazily, so importing ``lwdock`` is cheap. Searching and reusing are
methods of :class:`Dock` (``dock.search(X)``, ``dock.reuse(result)``): ``lwdock.search`` and
``lwdock.reuse`` are the packages (docs/python-api.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Dock": ("lwdock.api", "Dock"),
    "Entry": ("lwdock.records", "Entry"),
    "RKMETableSpec": ("lwdock.spec.rkme_table", "RKMETableSpec"),
    "RKMEImageSpec": ("lwdock.spec.rkme_image", "RKMEImageSpec"),
    "RKMETextSpec": ("lwdock.spec.rkme_text", "RKMETextSpec"),
    "SearchResult": ("lwdock.search.result", "SearchResult"),
    "load_ensemble": ("lwdock.reuse.api", "load_ensemble"),
    "Ensemble": ("lwdock.reuse.api", "Ensemble"),
    "LwdockError": ("lwdock.errors", "LwdockError"),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .api import Dock  # noqa: F401
    from .errors import LwdockError  # noqa: F401
    from .records import Entry  # noqa: F401
    from .reuse.api import Ensemble, load_ensemble  # noqa: F401
    from .search.result import SearchResult  # noqa: F401
    from .spec.rkme_image import RKMEImageSpec  # noqa: F401
    from .spec.rkme_table import RKMETableSpec  # noqa: F401
    from .spec.rkme_text import RKMETextSpec  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lwdock' has no attribute {name!r}")
