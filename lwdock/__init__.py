"""lwdock: a learnware dock you can run from a shell, and its Python API.

The data path is store -> spec -> check -> search -> reuse, one subpackage each.
Heavy modules load lazily, so importing ``lwdock`` is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Dock": ("lwdock.store.dock", "Dock"),
    "RKMETableSpec": ("lwdock.spec.rkme_table", "RKMETableSpec"),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .spec.rkme_table import RKMETableSpec  # noqa: F401
    from .store.dock import Dock  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lwdock' has no attribute {name!r}")
