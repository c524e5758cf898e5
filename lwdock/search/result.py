"""The search result as typed records; ``to_dict()`` is the ``--json`` schema (``docs/search.md``).

``SearchResult.from_dict(result.to_dict()) == result``, so a saved ``lwdock search --json``
file reads back as the same record (``lwdock reuse --from-search`` reads the same JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputDataError

SCHEMA = "lwdock.search/1"


@dataclass(frozen=True)
class Single:
    """One ranked learnware. ``score`` is the sort key (descending): the verified agreement when
    ``verified``, else ``match``; ``mmd2``, ``score`` and ``match`` are None for a semantic-only
    search, ``score`` also for a learnware listed after the verified ones that could not run."""

    rank: int
    id: str
    alias: str | None = None
    name: str = ""
    status: str | None = None
    mmd2: float | None = None
    score: float | None = None
    match: float | None = None
    verified: bool | None = None
    spec_quality: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "alias": self.alias, "name": self.name, "status": self.status,
                "mmd2": self.mmd2, "score": self.score, "match": self.match, "verified": self.verified,
                "spec_quality": self.spec_quality}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Single:
        def num(key: str) -> float | None:
            return None if data.get(key) is None else float(data[key])

        verified = data.get("verified")
        return cls(int(data["rank"]), str(data["id"]), data.get("alias"), str(data.get("name") or ""),
                   data.get("status"), num("mmd2"), num("score"), num("match"),
                   None if verified is None else bool(verified), data.get("spec_quality"))


@dataclass(frozen=True)
class MixtureHit:
    """The best weighted mixture of a few learnwares; ``weights`` follow ``ids`` and sum to 1."""

    ids: tuple[str, ...]
    aliases: tuple[str | None, ...]
    weights: tuple[float, ...]
    mmd2: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "aliases": list(self.aliases), "weights": list(self.weights),
                "mmd2": self.mmd2, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixtureHit:
        ids = tuple(str(i) for i in data["ids"])
        return cls(ids, tuple(data.get("aliases") or (None,) * len(ids)), tuple(float(w) for w in data["weights"]),
                   float(data["mmd2"]), float(data.get("score") or 0.0))


@dataclass(frozen=True)
class HeteroSingle:
    """A learnware whose columns differ from the user's (``lwdock.hetero``), ranked by damage:
    the share of the learnware's column importance the user cannot supply (0 = none lost,
    1 = nothing matched; lower is better). ``shared_columns`` names each matched pair."""

    rank: int
    id: str
    alias: str | None = None
    name: str = ""
    status: str | None = None
    damage: float = 1.0
    n_columns: int = 0
    shared_columns: tuple[dict[str, Any], ...] = ()
    imputed_columns: tuple[str, ...] = ()
    map_mmd2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "alias": self.alias, "name": self.name, "status": self.status,
                "heterogeneous": True, "damage": self.damage, "n_columns": self.n_columns,
                "shared_columns": [dict(c) for c in self.shared_columns],
                "imputed_columns": list(self.imputed_columns), "map_mmd2": self.map_mmd2}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeteroSingle:
        mmd = data.get("map_mmd2")
        return cls(int(data["rank"]), str(data["id"]), data.get("alias"), str(data.get("name") or ""),
                   data.get("status"), float(data.get("damage", 1.0)), int(data.get("n_columns") or 0),
                   tuple(dict(c) for c in data.get("shared_columns") or ()),
                   tuple(str(c) for c in data.get("imputed_columns") or ()), None if mmd is None else float(mmd))


@dataclass
class SearchResult:
    singles: list[Single] = field(default_factory=list)
    mixture: MixtureHit | None = None
    explanation: str | None = None  # a sentence when ``singles`` and ``heterogeneous`` are empty
    query: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    dock: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, Any] = field(default_factory=dict)  # identify.Signals.to_dict() (statistical searches)
    kernel: dict[str, Any] | None = None  # the search kernel of the user's feature space
    verification: dict[str, Any] | None = None  # how the verified re-rank ran (None: it did not)
    heterogeneous: list[HeteroSingle] = field(default_factory=list)  # columns differ from the user's

    @property
    def empty(self) -> bool:
        return not self.singles and not self.heterogeneous

    @property
    def cannot_discriminate(self) -> bool:
        """The scores cannot be trusted to pick a learnware: no learnware saw data like the user's,
        or the kernel cannot tell them apart (docs/search.md)."""
        return bool(self.signals.get("cannot_discriminate", False))

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.singles]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "dock": self.dock,
            "query": self.query,
            "counts": self.counts,
            "singles": [s.to_dict() for s in self.singles],
            "mixture": self.mixture.to_dict() if self.mixture else None,
            "explanation": self.explanation,
            "cannot_discriminate": self.cannot_discriminate,
            "signals": self.signals,
            "kernel": self.kernel,
            "verification": self.verification,
            "heterogeneous": [h.to_dict() for h in self.heterogeneous],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise InputDataError(f"not a search result of schema {SCHEMA!r} (got {schema!r})")
        mix = data.get("mixture")
        return cls([Single.from_dict(s) for s in data.get("singles") or []], MixtureHit.from_dict(mix) if mix else None,
                   data.get("explanation"), dict(data.get("query") or {}), dict(data.get("counts") or {}),
                   dict(data.get("dock") or {}), dict(data.get("signals") or {}), data.get("kernel"),
                   data.get("verification"),
                   [HeteroSingle.from_dict(h) for h in data.get("heterogeneous") or []])
