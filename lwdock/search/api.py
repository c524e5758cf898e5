"""Search API: semantic filters, then statistical ranking and the mixture, over a dock.

``search(dock, ...)`` is what ``lwdock search`` calls; ``search_cache(store, ...)`` runs the
statistical part on a bare :class:`~lwdock.search.store.SegmentStore` (benchmarks, tools).
Every spec type goes through the same path: the user's spec names its group in the store
(:mod:`lwdock.search.space`), :func:`lwdock.search.engine.rank` ranks that group, and
:mod:`lwdock.search.explain` says why nothing was found. The JSON schema of
:meth:`SearchResult.to_dict` is documented in ``docs/search.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..hetero import query as hetero
from ..records import Entry
from ..spec.embedders import DEFAULT_EMBEDDER
from . import explain, mixture
from .cache import ensure_current
from .engine import RankOptions, StatResult, rank
from .result import HeteroSingle, MixtureHit, SearchResult, Single
from .scores import mmd2_to_score
from .semantic import SemanticQuery, filter_entries
from .store import Group, SegmentStore
from .user import UserSpec, as_user_spec, data_kind, user_spec_from_data
from .view import DockView, as_entry, gc_paused, setting

__all__ = ["SearchOptions", "SearchResult", "StatQuery", "load_user_spec", "run", "search", "search_cache",
           "user_spec_from_data"]


@dataclass(frozen=True)
class SearchOptions:
    """How many results, how the mixture is searched, whether the pre-filter runs."""

    k: int = 10
    max_mixture: int = 5
    method: str = "greedy"
    prefilter: bool | None = None  # None: on above the backend's threshold
    include_unchecked: bool = False

    def check(self) -> SearchOptions:
        if self.k < 1:
            raise UsageError(f"k must be at least 1, got {self.k}")
        if self.max_mixture < 1:
            raise UsageError(f"max_mixture must be at least 1, got {self.max_mixture}")
        if self.method not in mixture.METHODS:
            raise UsageError(f"unknown mixture method {self.method!r}; choose one of {', '.join(mixture.METHODS)}")
        return self

    def ranking(self, rerank: int | None = None) -> RankOptions:
        return RankOptions(self.k, self.max_mixture, self.method, self.prefilter, rerank)


@dataclass(frozen=True)
class StatQuery:
    """The statistical half of a query: a user spec, or a data file whose spec is fitted locally."""

    user_spec: Any = None  # a fitted spec, a spec dict, a UserSpec or a spec file path
    data: str | Path | None = None  # .csv/.npy/.npz table, N x C x H x W .npy images, .txt/.jsonl/.csv texts
    data_type: tuple[str, ...] = ()  # --data-type values: pick the data kind when the file does not tell
    embedder: str = DEFAULT_EMBEDDER  # text data: the sentence embedder
    text_field: str | None = None  # text data: .jsonl field or .csv column

    def resolve(self, dock: DockView) -> UserSpec | None:
        if self.data is not None:
            if self.user_spec is not None:
                raise UsageError("give a user specification or a data file, not both")
            return user_spec_from_data(self.data, data_kind(self.data, list(self.data_type)),
                                       gamma=float(setting(dock, "gamma", 0.1)), embedder=self.embedder,
                                       text_field=self.text_field)
        return None if self.user_spec is None else as_user_spec(self.user_spec)


def _listify(v: str | Sequence[str] | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


def search(
    dock: DockView,
    user_spec: Any = None,
    *,
    data: str | Path | None = None,
    name: str | None = None,
    description_like: str | None = None,
    data_type: str | list[str] | None = None,
    task: str | list[str] | None = None,
    library: str | list[str] | None = None,
    scenario: str | list[str] | None = None,
    license: str | list[str] | None = None,  # noqa: A002 - the semantic key's name
    ids: str | list[str] | None = None,
    k: int = 10,
    max_mixture: int = 5,
    method: str = "greedy",
    include_unchecked: bool = False,
    prefilter: bool | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    text_field: str | None = None,
) -> SearchResult:
    """Semantic filters, then (with ``user_spec`` or ``data``) MMD ranking and the best mixture.

    ``user_spec``: a fitted spec of any type, a dict with z/beta/gamma, a :class:`UserSpec`, or a
    path to a spec file. ``data``: a data file whose spec is fitted locally (tables with the
    dock's gamma; images; texts with ``embedder`` and ``text_field``); the rows are not stored.
    ``prefilter``: True/False forces the pre-filter on/off; None leaves it to the kernel backend
    (on above 20,000 compatible table/text learnwares, 200 image learnwares).
    """
    options = SearchOptions(k, max_mixture, method, prefilter, include_unchecked).check()
    semantic = SemanticQuery(
        name=name, description_like=description_like, data_type=_listify(data_type), task=_listify(task),
        library=_listify(library), scenario=_listify(scenario), license=_listify(license), ids=_listify(ids),
    )
    stat = StatQuery(user_spec, data, tuple(_listify(data_type)), embedder, text_field)
    return run(dock, semantic, stat, options)


@dataclass
class _Snapshot:
    """What one search reads from the dock, all under one hold of its lock."""

    raw: list[Any]  # Dock.entries() as returned (the semantic filter reads these)
    generation: int
    store: SegmentStore | None = None
    group: Group | None = None  # the user's group, every array opened
    hetero: hetero.Plan | None = None  # the user's table names its columns and the dock has named learnwares
    _records: dict[int, Entry] = field(default_factory=dict)

    def records(self, subset: list[Any]) -> list[Entry]:
        """Records of items of ``raw``, each converted once and only when asked for (the semantic
        filter returns the objects it was given, so a subset maps back by identity)."""
        out = []
        for r in subset:
            e = self._records.get(id(r))
            if e is None:
                e = self._records[id(r)] = as_entry(r)
            out.append(e)
        return out


def _snapshot(dock: DockView, user: UserSpec | None, data: Any = None) -> _Snapshot:
    with dock.lock():
        snap = _Snapshot(dock.entries(), dock.generation())
        if user is not None:
            snap.store = ensure_current(dock, snap.records(snap.raw))
            snap.group = snap.store.group(user.key)
            if data is not None and user.kind == "table":
                snap.hetero = hetero.plan(dock, snap.records(snap.raw), data)
    return snap


def run(dock: DockView, semantic: SemanticQuery, stat: StatQuery, options: SearchOptions) -> SearchResult:
    """:func:`search` with its parameters grouped."""
    options.check()
    user = stat.resolve(dock)
    with gc_paused():  # index-sized bursts of small objects, none cyclic: see view.gc_paused
        return _run(dock, semantic, user, options, stat.data)


def _run(dock: DockView, semantic: SemanticQuery, user: UserSpec | None, options: SearchOptions,
         data: Any = None) -> SearchResult:
    snap = _snapshot(dock, user, data)
    kept, trace = filter_entries(snap.raw, semantic, options.include_unchecked)
    result = SearchResult(
        query={"filters": semantic.describe(), "include_unchecked": options.include_unchecked, "k": options.k,
               "max_mixture": options.max_mixture, "method": options.method, "prefilter": options.prefilter,
               "user_spec": user.describe() if user else None},
        dock={"path": str(dock.path), "generation": snap.generation},
        counts={"learnwares": len(snap.raw), "semantic_matches": len(kept)},
    )
    if not kept:
        result.explanation = explain.semantic(trace)
    elif user is None:
        result.singles = [_single(i + 1, e) for i, e in enumerate(snap.records(kept[: options.k]))]
    else:
        _statistical(result, snap, user, snap.records(kept), options)
    return result


def _statistical(result: SearchResult, snap: _Snapshot, user: UserSpec, kept: list[Entry],
                 options: SearchOptions) -> None:
    other_columns = snap.hetero.heterogeneous if snap.hetero is not None else set()
    allowed = {e.id for e in kept} - other_columns  # named columns unlike the user's: never compared by position
    stat = rank(snap.group, user, allowed, options.ranking()) if snap.group is not None and allowed else None
    if stat is None or stat.considered == 0:
        assert snap.store is not None
        result.explanation = explain.statistical(kept, user.profile, snap.store.profiles_of(user.kind))
    else:
        _fill(result, stat, {e.id: e for e in kept})
    if snap.hetero is not None and other_columns & {e.id for e in kept}:
        _heterogeneous(result, snap.hetero, kept, options)


def _heterogeneous(result: SearchResult, plan: hetero.Plan, kept: list[Entry], options: SearchOptions) -> None:
    """Learnwares whose named columns differ from the user's, ranked by ``lwdock.hetero``."""
    missing = hetero.unavailable()
    if missing:
        result.explanation = f"{result.explanation}; {missing}" if result.explanation else missing
        return
    found = hetero.search(plan, {e.id for e in kept}, options.k)
    by_id = {e.id: e for e in kept}
    result.heterogeneous = [
        HeteroSingle(i + 1, h.id, by_id[h.id].alias, by_id[h.id].semantic.name, by_id[h.id].status, h.damage_rel,
                     h.n_columns, tuple(h.shared), tuple(h.imputed), h.map_mmd2)
        for i, h in enumerate(found.hits)
    ]
    result.counts.update(heterogeneous_candidates=found.candidates, heterogeneous_sharing=found.gated)
    if result.heterogeneous and not result.singles:
        result.explanation = None
    elif found.explanation:
        result.explanation = f"{result.explanation}; {found.explanation}" if result.explanation else found.explanation


def search_cache(
    store: SegmentStore, user_spec: Any, *, k: int = 10, max_mixture: int = 5, method: str = "greedy",
    prefilter: bool | None = None, allowed: set[str] | None = None, rerank: int | None = None,
) -> SearchResult:
    """Statistical search on a bare store (no dock, no semantic filter); ``rerank`` overrides
    the pre-filter's exact re-rank budget (benchmarks)."""
    options = SearchOptions(k, max_mixture, method, prefilter).check()
    user = as_user_spec(user_spec)
    result = SearchResult(query={"k": k, "max_mixture": max_mixture, "method": method, "prefilter": prefilter,
                                 "user_spec": user.describe()})
    group = store.group(user.key)
    if group is None:
        pool = list(store.profiles_of(user.kind).values())
        result.explanation = explain.mismatch(pool, user.profile) or f"the store holds no {user.kind} learnwares"
        return result
    _fill(result, rank(group, user, allowed, options.ranking(rerank)), {})
    return result


def load_user_spec(path: str | Path) -> UserSpec:
    """Read a user specification file (any type the spec package knows); clear errors on bad files."""
    return as_user_spec(Path(path))


def _single(rank_: int, entry: Entry | None, lw_id: str = "", mmd2: float | None = None,
            score: float | None = None) -> Single:
    if entry is None:
        return Single(rank_, lw_id, mmd2=mmd2, score=score)
    return Single(rank_, entry.id, entry.alias, entry.semantic.name, entry.status, mmd2, score)


def _fill(result: SearchResult, stat: StatResult, by_id: dict[str, Entry]) -> None:
    scores = mmd2_to_score(stat.mmd2, stat.user_self, stat.self_products)
    result.singles = [
        _single(i + 1, by_id.get(lid), lid, float(d), float(s))
        for i, (lid, d, s) in enumerate(zip(stat.ids, stat.mmd2, scores))
    ]
    result.counts.update(statistical_candidates=stat.considered, prefiltered=stat.prefiltered)
    mix = stat.mixture
    if mix is not None:
        result.mixture = MixtureHit(
            tuple(mix.ids), tuple(by_id[i].alias if i in by_id else None for i in mix.ids),
            tuple(float(w) for w in mix.weights), float(mix.mmd2),
            float(mmd2_to_score(mix.mmd2, stat.user_self, mix.self_product)),
        )
