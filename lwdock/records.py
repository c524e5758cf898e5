"""Typed records passed between layers: :class:`Entry`, :class:`Semantic`, :class:`SpecSummary`,
:class:`CheckReport`.

The index, manifests and ``--json`` output keep their JSON form; every layer above the store
reads these records instead of digging in raw dicts. Each record round-trips:
``Entry.from_dict(e.to_dict()) == e``, and keys it does not know survive the round trip, so an
older lwdock never drops what a newer one wrote.

``Entry``, ``Semantic`` and ``SpecSummary`` are read-only views over their JSON document:
``from_dict`` keeps the document (it does not copy or parse it) and each field is read when it
is asked for. Listing or searching a dock of 100,000 learnwares therefore costs no more than
reading its index. The caller of ``from_dict`` hands the document over and must not change it
afterwards; records never change it either (:meth:`Entry.replace` builds a new one).

This module is a leaf: it imports nothing from lwdock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# -- statuses ------------------------------------------------------------------------------------
USABLE, SEMANTIC_ONLY, INVALID = "usable", "semantic-only", "invalid"
STATUSES = (USABLE, SEMANTIC_ONLY, INVALID)

# -- the semantic specification's keys -----------------------------------------------------------
CLASS_KEYS = ("Data", "Task", "Library", "License")
TAG_KEYS = ("Scenario",)
STRING_KEYS = ("Name", "Description")


def _plain(block: Any, kind: str) -> Any:
    """The value of one ``{"Type", "Values"}`` block as lwdock uses it."""
    vals = block.get("Values") if type(block) is dict or isinstance(block, Mapping) else None
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
    """A semantic specification (the reference's schema), read through named fields.

    ``raw`` is the normalised ``{"Data": {"Type": "Class", "Values": [...]}, ...}`` dict that is
    stored and exported; the other fields are derived from it. Validation lives in
    :mod:`lwdock.format.semantic`; a record read from the index has been validated on submit.
    """

    raw: Mapping[str, Any] = field(default_factory=dict, compare=True, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Semantic:
        return cls(raw=data if type(data) is dict or isinstance(data, Mapping) else {})

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def __hash__(self) -> int:  # raw is a dict; records are compared by value, hashed by name
        return hash((self.name, self.data_type, self.task))

    def __repr__(self) -> str:
        return f"Semantic(name={self.name!r}, data_type={self.data_type!r}, task={self.task!r})"

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


class SpecSummary:
    """What the index keeps about one statistical spec of a learnware (the spec itself stays in the zip)."""

    __slots__ = ("_doc",)
    _KEYS = ("kind", "file_name", "class_name", "dim", "gamma", "num_points", "error")

    def __init__(
        self,
        kind: str,
        file_name: str,
        class_name: str = "",
        dim: int | None = None,
        gamma: float | None = None,
        num_points: int = 0,
        error: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        doc: dict[str, Any] = {"kind": kind, "class_name": class_name, "file_name": file_name}
        if dim is not None:
            doc["dim"] = int(dim)
        if gamma is not None:
            doc["gamma"] = float(gamma)
        if num_points:
            doc["num_points"] = int(num_points)
        if error is not None:
            doc["error"] = str(error)
        doc.update(extra or {})
        self._doc = doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpecSummary:
        obj = cls.__new__(cls)
        obj._doc = data if isinstance(data, Mapping) else {}
        return obj

    def to_dict(self) -> dict[str, Any]:
        return dict(self._doc)

    @property
    def kind(self) -> str:
        return str(self._doc.get("kind", ""))

    @property
    def file_name(self) -> str:
        return str(self._doc.get("file_name", ""))

    @property
    def class_name(self) -> str:
        return str(self._doc.get("class_name", ""))

    @property
    def dim(self) -> int | None:
        dim = self._doc.get("dim")
        return int(dim) if dim is not None else None

    @property
    def gamma(self) -> float | None:
        gamma = self._doc.get("gamma")
        return float(gamma) if gamma is not None else None

    @property
    def num_points(self) -> int:
        return int(self._doc.get("num_points") or 0)

    @property
    def error(self) -> str | None:
        return self._doc.get("error")

    @property
    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self._doc.items() if k not in self._KEYS}

    @property
    def usable(self) -> bool:
        return self.error is None

    def _fields(self) -> tuple[Any, ...]:
        return (self.kind, self.file_name, self.class_name, self.dim, self.gamma, self.num_points, self.error)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpecSummary) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"SpecSummary(kind={self.kind!r}, file_name={self.file_name!r}, dim={self.dim!r}, gamma={self.gamma!r})"


@dataclass
class CheckReport:
    """The result of the usability checks. Each check is ``{"name", "ok", "reason"}``; ``ok`` is
    None for a check skipped because one it depends on failed."""

    status: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    sandbox: dict[str, Any] | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != INVALID

    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c.get("ok") is False]

    def summary(self) -> str:
        """One line: the status, and the first failure's reason."""
        fails = self.failures()
        return self.status if not fails else f"{self.status}: {fails[0]['name']}: {fails[0].get('reason')}"

    def compact(self) -> dict[str, Any]:
        """The report as the index keeps it: names and results, reasons of failures only.

        The full report (environment, sandbox, model shapes, every reason) stays in the
        manifest; keeping the index small keeps listing and search fast on big docks.
        """
        checks = [
            {"name": c["name"], "ok": c.get("ok"), **({"reason": c.get("reason")} if c.get("ok") is False else {})}
            for c in self.checks
        ]
        return {"status": self.status, "checks": checks}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CheckReport:
        data = data or {}
        return cls(
            status=str(data.get("status") or ""),
            checks=list(data.get("checks") or []),
            env=data.get("env"),
            model=data.get("model"),
            sandbox=data.get("sandbox"),
            duration_s=float(data.get("duration_s") or 0.0),
        )


class Entry:
    """One learnware as the index knows it (a read-only view over its index document)."""

    # Fields are read from the document on each access, not cached: a cached object per entry
    # would keep 100,000 more objects alive on a big dock and wake the cyclic GC (a full
    # collection over the index costs seconds); a short-lived one is freed at once.
    __slots__ = ("_doc",)
    _KEYS = ("id", "semantic", "status", "alias", "specs", "check", "requirements", "size", "created")

    def __init__(
        self,
        id: str,  # noqa: A002 - the record's field
        semantic: Semantic | Mapping[str, Any],
        status: str,
        alias: str | None = None,
        specs: Iterable[SpecSummary | Mapping[str, Any]] = (),
        check: CheckReport | Mapping[str, Any] | None = None,
        requirements: Iterable[str] = (),
        size: int = 0,
        created: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        doc = {"id": str(id), "alias": alias, "semantic": {}, "status": str(status), "check": {}, "specs": [],
               "requirements": [], "size": 0, "created": ""}
        doc.update(extra or {})
        self._doc = _encode(doc, semantic=semantic, specs=specs, check=check, requirements=requirements,
                            size=size, created=created)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """The record over an index or manifest document (kept, not copied; see the module doc)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise ValueError(f"not a learnware entry: {str(data)[:80]}")
        obj = cls.__new__(cls)
        obj._doc = data
        return obj

    @classmethod
    def coerce(cls, item: Entry | Mapping[str, Any]) -> Entry:
        """``item`` as an Entry: records pass through, index documents are wrapped."""
        return item if isinstance(item, Entry) else cls.from_dict(item)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._doc)

    def summary(self) -> dict[str, Any]:
        """The flat record ``lwdock list --json`` prints: id, alias, name, data, task, status,
        dim (of the first spec that has one) and created."""
        dims = [s.dim for s in self.specs if s.dim is not None]
        return {
            "id": self.id,
            "alias": self.alias,
            "name": self.semantic.value("Name") or None,
            "data": self.semantic.data_type,
            "task": self.semantic.task,
            "status": self.status or None,
            "dim": dims[0] if dims else None,
            "created": self.created or None,
        }

    def replace(self, **changes: Any) -> Entry:
        """A new record with some fields changed (like :func:`dataclasses.replace`)."""
        unknown = set(changes) - set(self._KEYS)
        if unknown:
            raise TypeError(f"Entry has no field {sorted(unknown)[0]!r}")
        return Entry.from_dict(_encode(dict(self._doc), **changes))

    # -- fields --------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._doc["id"]

    @property
    def alias(self) -> str | None:
        return self._doc.get("alias")

    @property
    def status(self) -> str:
        return str(self._doc.get("status") or "")

    @property
    def semantic(self) -> Semantic:
        return Semantic.from_dict(self._doc.get("semantic"))

    @property
    def specs(self) -> tuple[SpecSummary, ...]:
        return tuple(SpecSummary.from_dict(s) for s in self._doc.get("specs") or ())

    @property
    def check(self) -> CheckReport:
        return CheckReport.from_dict(self._doc.get("check"))

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(self._doc.get("requirements") or ())

    @property
    def size(self) -> int:
        return int(self._doc.get("size") or 0)

    @property
    def created(self) -> str:
        return str(self._doc.get("created") or "")

    @property
    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self._doc.items() if k not in self._KEYS}

    # -- derived -------------------------------------------------------------------------------
    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def label(self) -> str:
        """How a person refers to it: alias, else name, else the short id."""
        return self.alias or self.semantic.name or self.short_id

    @property
    def input_kind(self) -> str:
        """What the learnware takes: "image" or "text" (from its specs, else its semantic Data), else "table"."""
        kinds = {s.kind for s in self.specs}
        for kind in ("image", "text"):
            if kind in kinds:
                return kind
        data = (self.semantic.data_type or "").lower()
        return data if data in ("image", "text") else "table"

    def spec(self, kind: str) -> SpecSummary | None:
        """The first usable spec of ``kind`` ("table", "image", "text"), if any."""
        return next((s for s in self.specs if s.kind == kind and s.usable), None)

    # -- value semantics -----------------------------------------------------------------------
    def _fields(self) -> tuple[Any, ...]:  # check and extra are not part of a learnware's identity
        return (self.id, self.semantic, self.status, self.alias, self.specs, self.requirements, self.size,
                self.created)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Entry(id={self.short_id!r}, label={self.label!r}, status={self.status!r})"


def _encode(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``doc`` with typed field values turned into their JSON form."""
    for key, value in fields.items():
        if key == "semantic":
            value = value.to_dict() if isinstance(value, Semantic) else dict(value or {})
        elif key == "specs":
            value = [s.to_dict() if isinstance(s, SpecSummary) else dict(s) for s in value or ()]
        elif key == "check":
            value = value.to_dict() if isinstance(value, CheckReport) else dict(value or {})
        elif key == "requirements":
            value = list(value or ())
        elif key == "size":
            value = int(value or 0)
        elif key == "created":
            value = str(value or "")
        doc[key] = value
    return doc
