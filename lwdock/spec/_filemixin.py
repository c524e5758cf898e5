"""File methods shared by every specification class.

Each class names its codec (``table``, ``image`` or ``text``); the JSON layout
of each lives in :mod:`lwdock.spec.specfile` as ``<codec>_to_dict`` and
``<codec>_from_dict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

S = TypeVar("S", bound="SpecFileMixin")


class SpecFileMixin:
    _codec = "table"
    _param_names: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}

    def to_dict(self) -> dict[str, Any]:
        from . import specfile

        return getattr(specfile, f"{self._codec}_to_dict")(self)

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any]) -> S:
        from . import specfile

        return getattr(specfile, f"{cls._codec}_from_dict")(data, cls)

    def save(self, path: str | Path) -> None:
        from .specfile import save_dict

        save_dict(self.to_dict(), path)

    @classmethod
    def load(cls: type[S], path: str | Path) -> S:
        from .specfile import read_dict

        return cls.from_dict(read_dict(path))
