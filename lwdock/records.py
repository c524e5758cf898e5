"""Typed records passed between layers: :class:`Semantic`, :class:`SpecSummary`, :class:`Entry`.

The index, manifests and ``--json`` output keep their JSON form; every layer
above the store reads these records instead of digging in raw dicts. Each
record round-trips: ``Entry.from_dict(e.to_dict()) == e``. Unknown keys in
stored JSON are kept in ``extra`` so an older lwdock never drops what a newer
one wrote.

This module is a leaf: it imports nothing from lwdock but ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CLASS_KEYS = ("Data", "Task", "Library", "License")
TAG_KEYS = ("Scenario",)
STRING_KEYS = ("Name", "Description")


def _plain(block: Any, kind: str) -> Any:
    """The value of one ``{"Type", "Values"}`` block as lwdock uses it."""
    vals = block.get("Values") if isinstance(block, Mapping) else None
    if kind == "Class":
        return str(vals[0]) if isinstance(vals, list) and vals else None
    if kind == "Tag":
        if isinstance(vals, str):
            return (vals,) if vals else ()
        return tuple(str(v) for v in vals) if isinstance(vals, (list, tuple)) else ()
    return vals if isinstance(vals, str) else ""


def _io(block: Any) -> tuple[int | None, dict[int, str]]:
    if not isinstance(block, Mapping):
        return None, {}
    dim = block.get("Dimension")
    dim = int(dim) if isinstance(dim, int) and not isinstance(dim, bool) else None
    desc = block.get("Description")
    names: dict[int, str] = {}
    if isinstance(desc, Mapping):
        for k, v in desc.items():
            try:
                names[int(k)] = str(v)
            except (TypeError, ValueError):
                continue
    return dim, names


@dataclass(frozen=True)
class Semantic:
    """A validated semantic specification (the reference's schema), read through named fields.

    ``raw`` is the normalised ``{"Data": {"Type": "Class", "Values": [...]}, ...}`` dict that is
    stored and exported; the other fields are derived from it.
    """

    raw: Mapping[str, Any] = field(default_factory=dict, compare=True, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Semantic":
        return cls(raw=dict(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def __hash__(self) -> int:  # raw is a dict; records are compared by value, hashed by name
        return hash((self.name, self.data_type, self.task))

    @property
    def data_type(self) -> str | None:
        return _plain(self.raw.get("Data"), "Class")

    @property
    def task(self) -> str | None:
        return _plain(self.raw.get("Task"), "Class")

    @property
    def library(self) -> str | None:
        return _plain(self.raw.get("Library"), "Class")

    @property
    def license(self) -> str | None:
        return _plain(self.raw.get("License"), "Class")

    @property
    def scenarios(self) -> tuple[str, ...]:
        return _plain(self.raw.get("Scenario"), "Tag")

    @property
    def name(self) -> str:
        return _plain(self.raw.get("Name"), "String")

    @property
    def description(self) -> str:
        return _plain(self.raw.get("Description"), "String")

    @property
    def input_dim(self) -> int | None:
        return _io(self.raw.get("Input"))[0]

    @property
    def input_names(self) -> dict[int, str]:
        """Column index -> description, for the columns the developer described."""
        return _io(self.raw.get("Input"))[1]

    @property
    def output_dim(self) -> int | None:
        return _io(self.raw.get("Output"))[0]

    @property
    def output_names(self) -> dict[int, str]:
        return _io(self.raw.get("Output"))[1]

    def value(self, key: str) -> Any:
        """The plain value of any key: first value of a Class key, tuple for a Tag, text for a String."""
        kind = "Class" if key in CLASS_KEYS else "Tag" if key in TAG_KEYS else "String"
        return _plain(self.raw.get(key), kind)


@dataclass(frozen=True)
class SpecSummary:
    """What the index keeps about one statistical spec of a learnware (the spec itself stays in the zip)."""

    kind: str
    file_name: str
    class_name: str = ""
    dim: int | None = None
    gamma: float | None = None
    num_points: int = 0
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    _KEYS = ("kind", "file_name", "class_name", "dim", "gamma", "num_points", "error")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SpecSummary":
        dim = data.get("dim")
        gamma = data.get("gamma")
        return cls(
            kind=str(data.get("kind", "")),
            file_name=str(data.get("file_name", "")),
            class_name=str(data.get("class_name", "")),
            dim=int(dim) if dim is not None else None,
            gamma=float(gamma) if gamma is not None else None,
            num_points=int(data.get("num_points") or 0),
            error=data.get("error"),
            extra={k: v for k, v in data.items() if k not in cls._KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "class_name": self.class_name, "file_name": self.file_name}
        if self.dim is not None:
            out["dim"] = self.dim
        if self.gamma is not None:
            out["gamma"] = self.gamma
        if self.num_points:
            out["num_points"] = self.num_points
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out

    @property
    def usable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Entry:
    """One learnware as the index knows it."""

    id: str
    semantic: Semantic
    status: str
    alias: str | None = None
    specs: tuple[SpecSummary, ...] = ()
    check: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    requirements: tuple[str, ...] = ()
    size: int = 0
    created: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    _KEYS = ("id", "semantic", "status", "alias", "specs", "check", "requirements", "size", "created")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Entry":
        return cls(
            id=str(data["id"]),
            semantic=Semantic.from_dict(data.get("semantic")),
            status=str(data.get("status", "")),
            alias=data.get("alias"),
            specs=tuple(SpecSummary.from_dict(s) for s in data.get("specs") or ()),
            check=dict(data.get("check") or {}),
            requirements=tuple(data.get("requirements") or ()),
            size=int(data.get("size") or 0),
            created=str(data.get("created") or ""),
            extra={k: v for k, v in data.items() if k not in cls._KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alias": self.alias,
            "semantic": self.semantic.to_dict(),
            "status": self.status,
            "check": dict(self.check),
            "specs": [s.to_dict() for s in self.specs],
            "requirements": list(self.requirements),
            "size": self.size,
            "created": self.created,
            **self.extra,
        }

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def label(self) -> str:
        """How a person refers to it: alias, else name, else the short id."""
        return self.alias or self.semantic.name or self.short_id

    def spec(self, kind: str) -> SpecSummary | None:
        """The first usable spec of ``kind`` ("table", "image", "text"), if any."""
        return next((s for s in self.specs if s.kind == kind and s.usable), None)
