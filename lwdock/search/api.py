"""Search API: semantic filters, then statistical ranking, verification and the mixture, over a dock.

``search(dock, ...)`` is what ``lwdock search`` calls; ``search_cache(store, ...)`` runs the
statistical part on a bare :class:`~lwdock.search.store.SegmentStore` (benchmarks, tools: no
models, so no verification). Every spec type goes through the same path: the user's spec names
its feature space (:mod:`lwdock.search.space`), :func:`lwdock.search.engine.rank` ranks that
group under the dock's kernel for the space, :mod:`lwdock.search.identify` says whether the
ranking can be trusted, :mod:`lwdock.search.verify` re-ranks the best candidates by what their
models do on the user's rows, and :mod:`lwdock.search.explain` says why nothing was found. The
JSON schema of :meth:`SearchResult.to_dict` is documented in ``docs/search.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._heap import keep_steady
from ..errors import UsageError
from ..hetero import query as hetero
from ..records import SEMANTIC_ONLY, USABLE, Entry
from ..spec.data import named_columns
from ..spec.embedders import DEFAULT_EMBEDDER
from . import bulk, explain, identify, idsets, mixture
from .cache import ensure_current
from .engine import POOL, Candidates, RankOptions, StatResult, rank
from .result import HeteroSingle, MixtureHit, SearchResult, Single
from .semantic import RecordSource, SemanticQuery, filter_rows
from .store import Group, SegmentStore
from .user import UserSpec, as_user_spec, data_kind, user_spec_from_data
from .verify import VerifyOptions, verify
from .view import DockView, as_entries, as_entry, gc_paused

__all__ = ["RERANKS", "SearchOptions", "SearchResult", "StatQuery", "load_user_spec", "run", "search",
           "search_cache", "user_spec_from_data"]

RERANKS = ("verified", "mmd")


@dataclass(frozen=True)
class SearchOptions:
    """How many results, how they are ranked and filtered, how the mixture is found.

    ``rerank``: ``verified`` (default: the best candidates are re-ranked by what their models do
    on your rows, where they can run) or ``mmd`` (distributions only, by match). ``min_score``:
    drop singles scoring below it. ``trusted``: verification runs the models in this process
    (learnwares you trust) instead of sandboxed workers."""

    k: int = 10
    max_mixture: int = 5
    method: str = "qp"
    prefilter: bool | None = None  # None: on above the backend's threshold
    include_unchecked: bool = False
    rerank: str = "verified"
    min_score: float | None = None
    trusted: bool = False

    def check(self) -> SearchOptions:
        if self.k < 1:
            raise UsageError(f"k must be at least 1, got {self.k}")
        if self.max_mixture < 1:
            raise UsageError(f"max_mixture must be at least 1, got {self.max_mixture}")
        if self.method not in mixture.METHODS:
            raise UsageError(f"unknown mixture method {self.method!r}; choose one of {', '.join(mixture.METHODS)}")
        if self.rerank not in RERANKS:
            raise UsageError(f"unknown re-rank {self.rerank!r}; choose one of {', '.join(RERANKS)}")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise UsageError(f"min_score must be between 0 and 1, got {self.min_score}")
        return self

    @property
    def pool(self) -> int:
        """Candidates kept by MMD^2 for coverage, verification and the mixture."""
        greedy = mixture.pool_size(self.method, self.max_mixture) if self.method != "qp" else 0
        return max(POOL, self.k, greedy)

    def ranking(self, rerank: int | None = None) -> RankOptions:
        return RankOptions(self.k, self.pool, self.prefilter, rerank)

    def describe(self) -> dict[str, Any]:
        return {"include_unchecked": self.include_unchecked, "k": self.k, "max_mixture": self.max_mixture,
                "method": self.method, "prefilter": self.prefilter, "rerank": self.rerank, "min_score": self.min_score}


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
            return user_spec_from_data(self.data, data_kind(self.data, list(self.data_type)), embedder=self.embedder,
                                       text_field=self.text_field, column_orders=lambda: _column_orders(dock))
        return None if self.user_spec is None else as_user_spec(self.user_spec)


def _column_orders(dock: DockView) -> list[list[str] | None]:
    """The column names of each learnware in the dock (None where it does not name them all)."""
    with dock.lock():
        raw = dock.entries()
    return [named_columns(s.input_dim, s.input_names) for s in (as_entry(e).semantic for e in raw)]


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
    method: str = "qp",
    include_unchecked: bool = False,
    prefilter: bool | None = None,
    embedder: str = DEFAULT_EMBEDDER,
    text_field: str | None = None,
    rerank: str = "verified",
    min_score: float | None = None,
    trusted: bool = False,
) -> SearchResult:
    """Semantic filters, then (with ``user_spec`` or ``data``) the statistical ranking and the mixture.

    ``user_spec``: a fitted spec of any type, a dict with z/beta, a :class:`UserSpec`, or a path
    to a spec file (however it was fitted: the dock compares it under its own kernel). ``data``:
    a data file whose spec is fitted locally with no kernel parameter (tables; images; texts with
    ``embedder`` and ``text_field``); its rows are not stored. ``rerank``: ``verified`` re-ranks
    the best candidates by their models' agreement on your rows (or, with only a table spec, on
    its points); ``mmd`` ranks by the distributions alone. ``prefilter``: True/False forces the
    pre-filter on/off; None leaves it to the kernel backend.
    """
    options = SearchOptions(k, max_mixture, method, prefilter, include_unchecked, rerank, min_score, trusted).check()
    semantic = SemanticQuery(
        name=name, description_like=description_like, data_type=_listify(data_type), task=_listify(task),
        library=_listify(library), scenario=_listify(scenario), license=_listify(license), ids=_listify(ids),
    )
    stat = StatQuery(user_spec, data, tuple(_listify(data_type)), embedder, text_field)
    return run(dock, semantic, stat, options)


@dataclass
class _Snapshot:
    """What one search reads from the dock, all under one hold of its lock."""

    rows: Any  # the semantic filter's RowSource: the dock's summary, or the records of Dock.entries()
    generation: int
    store: SegmentStore | None = None
    group: Group | None = None  # the user's group, every array opened
    hetero: hetero.Plan | None = None  # the user's table names its columns and the dock has named learnwares


def _rows(dock: DockView, generation: int) -> Any:
    """The dock's summary when it keeps one (:meth:`lwdock.Dock.rows`), else its entries as records."""
    rows = getattr(dock, "rows", None)
    return rows(generation) if callable(rows) else RecordSource(as_entries(dock.entries()))


def _snapshot(dock: DockView, user: UserSpec | None, data: Any = None) -> _Snapshot:
    with dock.lock():
        # read once: on a local dock nothing changes it while the lock is held (on a team dock the
        # store then catches up to at least this generation, as before)
        generation = dock.generation()
        snap = _Snapshot(_rows(dock, generation), generation)
        if user is not None:
            snap.store = ensure_current(dock, lambda: as_entries(dock.entries()), user.key, generation)
            snap.group = snap.store.group(user.key)
            if data is not None and user.kind == "table":
                snap.hetero = hetero.plan(dock, lambda: as_entries(dock.entries()), data)  # read only for named columns
    return snap


def run(dock: DockView, semantic: SemanticQuery, stat: StatQuery, options: SearchOptions) -> SearchResult:
    """:func:`search` with its parameters grouped."""
    options.check()
    keep_steady()  # a warm process keeps its temporaries mapped from one search to the next
    user = stat.resolve(dock)
    with gc_paused():  # index-sized bursts of small objects, none cyclic: see view.gc_paused
        return _run(dock, semantic, user, options, stat.data)


def _run(dock: DockView, semantic: SemanticQuery, user: UserSpec | None, options: SearchOptions,
         data: Any = None) -> SearchResult:
    snap = _snapshot(dock, user, data)
    rows = snap.rows
    kept, trace = filter_rows(rows, semantic, options.include_unchecked)
    n_kept = rows.size(kept)
    result = SearchResult(
        query={"filters": semantic.describe(), **options.describe(), "user_spec": user.describe() if user else None},
        dock={"path": str(dock.path), "generation": snap.generation},
        counts={"learnwares": trace[0][1], "semantic_matches": n_kept},
    )
    if not n_kept:
        result.explanation = explain.semantic(trace)
    elif user is None:
        result.singles = [_single(i + 1, e) for i, e in enumerate(rows.entries(kept[: options.k]))]
    else:
        _statistical(result, dock, snap, user, kept, options)
    return result


# The last restriction built, with what it was built from: (rows, kind, kept, allowed). A warm
# process searching one dock state with the same filters gets the same object back, and the engine
# then its picks (engine._picks): at 1,000,000 learnwares both are O(N) passes of ~50 ms. The rows
# (a summary view: immutable, one object per summary state) are held, so their identity is theirs.
_last_allowed: list[tuple[Any, str, np.ndarray, Any]] = []


def _allowed(rows: Any, kept: Any, kind: str) -> set[str] | idsets.Ids | None:
    """The ids ranking may consider; None (no restriction, no id set to build) when the semantic
    filter kept every learnware of the user's spec type that the store holds."""
    last = _last_allowed[0] if _last_allowed else None
    if last is not None and last[0] is rows and last[1] == kind and np.array_equal(last[2], kept):
        return last[3]
    every = rows.keep_status(rows.start(), {USABLE, SEMANTIC_ONLY, ""})
    if rows.count_kind(kept, kind) == rows.count_kind(every, kind):
        allowed = None
    else:
        allowed = idsets.restriction(rows, kept)  # a large dock: the few left out, not a set of every kept id
    if isinstance(kept, np.ndarray) and not isinstance(allowed, set):  # sets are the caller's to change
        _last_allowed[:] = [(rows, kind, kept.copy(), allowed)]
    return allowed


def _full_entries(dock: DockView, ids: list[str]) -> dict[str, Entry]:
    """The index entries of the candidates (verification needs their task, output and labels,
    which a summary row does not hold); read by id where the dock can, else from every entry."""
    get_many = getattr(dock, "get_many", None)
    found = get_many(ids) if callable(get_many) else [e for e in as_entries(dock.entries()) if e.id in set(ids)]
    return {e.id: as_entry(e) for e in found}


def _candidate_entries(dock: DockView, rows: Any, stat: StatResult, options: SearchOptions) -> dict[str, Entry]:
    """What the later stages need of each candidate: full index entries for the verified re-rank
    (task, output, labels); otherwise the semantic source's rows (id, alias, name, status), which
    on a dock with a summary costs no index read at all."""
    c = stat.candidates
    if options.rerank == "verified":
        return _full_entries(dock, list(c.ids))
    if options.method != "qp":  # greedy and auto draw their pool by MMD^2 (_mixture)
        return rows.entries_by_id(list(c.ids))
    # unverified, the singles and the qp mixture's pool are the first of this order (_fill, _mixture)
    shown = max(options.k, mixture.pool_size(options.method, options.max_mixture))
    return rows.entries_by_id([c.ids[int(p)] for p in identify.unverified_order(c)[:shown]])


def _statistical(result: SearchResult, dock: DockView, snap: _Snapshot, user: UserSpec, kept: Any,
                 options: SearchOptions) -> None:
    rows = snap.rows
    group = snap.group
    other_columns = snap.hetero.heterogeneous if snap.hetero is not None else set()
    allowed = _allowed(rows, kept, user.kind)
    if other_columns:  # named columns unlike the user's: never compared by position
        allowed = (set(rows.ids(kept)) if allowed is None else allowed) - other_columns
    stat = rank(group, user, allowed, options.ranking()) if group is not None and allowed != set() else None
    if stat is None or stat.considered == 0:
        assert snap.store is not None
        result.explanation = explain.statistical(rows.entries(kept), user.profile, snap.store.profiles_of(user.kind))
    else:
        assert group is not None
        _fill(result, stat, group, _candidate_entries(dock, rows, stat, options), user, options, dock)
    if snap.hetero is not None:
        kept_hetero = other_columns & set(rows.ids(kept))
        if kept_hetero:
            _heterogeneous(result, dock, snap.hetero, kept_hetero, options)


def _heterogeneous(result: SearchResult, dock: DockView, plan: hetero.Plan, kept: set[str],
                   options: SearchOptions) -> None:
    """Learnwares whose named columns differ from the user's, ranked by ``lwdock.hetero``."""
    missing = hetero.unavailable()
    if missing:
        result.explanation = f"{result.explanation}; {missing}" if result.explanation else missing
        return
    found = hetero.search(plan, kept, options.k)
    by_id = _full_entries(dock, [h.id for h in found.hits])
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
    store: SegmentStore, user_spec: Any, *, k: int = 10, max_mixture: int = 5, method: str = "qp",
    prefilter: bool | None = None, allowed: set[str] | None = None, rerank: int | None = None,
) -> SearchResult:
    """Statistical search on a bare store (no dock, no semantic filter, no verification: ranked by
    match); ``rerank`` overrides the pre-filter's exact re-rank budget (benchmarks)."""
    options = SearchOptions(k, max_mixture, method, prefilter, rerank="mmd").check()
    user = as_user_spec(user_spec)
    result = SearchResult(query={**options.describe(), "user_spec": user.describe()})
    group = store.group(user.key)
    stat = rank(group, user, allowed, options.ranking(rerank)) if group is not None else None
    if group is None or stat is None:
        pool = list(store.profiles_of(user.kind).values())
        result.explanation = explain.mismatch(pool, user.profile) or f"the store holds no {user.kind} learnwares"
        return result
    _fill(result, stat, group, {}, user, options, None)
    return result


def load_user_spec(path: str | Path) -> UserSpec:
    """Read a user specification file (any type the spec package knows); clear errors on bad files."""
    return as_user_spec(Path(path))


def _single(rank_: int, entry: Entry | None, lw_id: str = "", **numbers: Any) -> Single:
    if entry is None:
        return Single(rank_, lw_id, **numbers)
    return Single(rank_, entry.id, entry.alias, entry.semantic.name, entry.status, **numbers)


def _fill(result: SearchResult, stat: StatResult, group: Group, by_id: dict[str, Entry], user: UserSpec,
          options: SearchOptions, dock: DockView | None) -> None:
    c = stat.candidates
    with bulk.one_blas_thread():  # small kernel blocks: a multi-threaded BLAS collapses under load (bulk.py)
        signals = identify.assess(stat)
    order, scores = identify.unverified_order(c), dict(enumerate(c.match.tolist()))
    verified: set[int] = set()
    ver = None
    if dock is not None and options.rerank == "verified":
        ver = verify(dock, c, options.pool, by_id, user, VerifyOptions(trusted=options.trusted))
        if ver.scores:
            order, scores, verified = ver.order, ver.scores, set(ver.scores)
            result.verification = ver.describe()
    degenerate = set(group.meta.get("degenerate", []))
    singles = []
    for pos in order[: options.k]:
        p = int(pos)
        score = scores.get(p) if (p in verified or not verified) else None
        if options.min_score is not None and (score is None or score < options.min_score):
            continue
        lid = c.ids[p]
        singles.append(_single(len(singles) + 1, by_id.get(lid), lid, mmd2=float(c.mmd2[p]), score=score,
                               match=float(c.match[p]), verified=p in verified,
                               spec_quality="degenerate-gamma" if lid in degenerate else None))
    result.singles = singles
    result.kernel = group.kernel_info()
    result.counts.update(statistical_candidates=stat.considered, prefiltered=stat.prefiltered, exact=stat.exact)
    if not singles and options.min_score is not None:
        result.explanation = f"no learnware scores at least {options.min_score:g}"
    with bulk.one_blas_thread():
        result.mixture = _mixture(c, order, options, by_id)
    if ver is not None:
        signals.notes += ver.notes
        signals.flags += ver.flags if ver.scores else []
    result.signals = signals.to_dict()


def _sub_gram(c: Candidates, sub: list[int], whole: bool) -> mixture.Gram:
    """The Gram matrix of the mixture's pool alone, over the pool's points (the pool is 10 of the
    20-30 kept): all of it in one pass when the method reads all of it (``whole``), else a row
    when a candidate joins."""
    Z, B, off = c.stacked(sub)
    if whole:
        M = c.backend.gram(Z, B, off, c.selfs[sub])
        return mixture.Gram(c.selfs[sub], lambda i: M[i])
    return mixture.Gram(c.selfs[sub], lambda i: c.backend.gram_row(Z, B, off, i))


def _mixture(c: Candidates, order: np.ndarray, options: SearchOptions, by_id: dict[str, Entry]) -> MixtureHit | None:
    """The best weighted mixture: ``qp`` over the best 10 of the final ranking, ``greedy`` / ``auto``
    over the best ``max_mixture^2`` by MMD^2 (their documented behaviour)."""
    if options.max_mixture < 2 or c.size < 2:
        return None
    pool = mixture.pool_size(options.method, options.max_mixture)
    sub = [int(p) for p in (order if options.method == "qp" else np.arange(c.size))[:pool]]
    if options.method != "qp" and not c.mmd2[sub[0]] > 0:
        return None
    gram = _sub_gram(c, sub, whole=options.method != "greedy")
    found = mixture.find(gram, c.cross[sub], c.user.self_product, options.max_mixture, options.method)
    if found is None:
        return None
    K = gram.sub(found.members)
    w = np.asarray(found.weights, dtype=np.float64)
    cross = float(w @ c.cross[[sub[m] for m in found.members]])
    score = float(np.clip(2.0 * cross / (c.user.self_product + float(w @ K @ w)), 0.0, 1.0))
    ids = [c.ids[sub[m]] for m in found.members]
    return MixtureHit(tuple(ids), tuple(by_id[i].alias if i in by_id else None for i in ids),
                      tuple(float(x) for x in w), float(found.mmd2), score)
