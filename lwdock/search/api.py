"""Search API: semantic filters, then statistical ranking and the mixture, over a Dock.

``search(dock, user_spec, ...)`` is what ``lwdock search`` calls; ``search_cache(...)`` runs the
statistical part on a bare :class:`~lwdock.search.cache.SearchCache` (benchmarks, tools).
The JSON schema of :meth:`SearchResult.to_dict` is documented in ``docs/search.md``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from . import dense as _dense
from . import mixture as _mixture
from .cache import SearchCache, eligible, ensure_current, entry_dicts
from .scores import mmd2_to_score
from .semantic import SemanticQuery, entry_name, filter_entries
from .stat import TABLE_TYPES, StatResult, UserSpec, as_user_spec, find_group, rank

SCHEMA = "lwdock.search/1"


@dataclass
class SearchResult:
    singles: list[dict[str, Any]] = field(default_factory=list)
    mixture: dict[str, Any] | None = None
    explanation: str | None = None
    query: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    dock: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.singles

    @property
    def ids(self) -> list[str]:
        return [s["id"] for s in self.singles]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "dock": self.dock,
            "query": self.query,
            "counts": self.counts,
            "singles": self.singles,
            "mixture": self.mixture,
            "explanation": self.explanation,
        }


def load_user_spec(path: str | Path) -> UserSpec:
    """Read a user specification file (any type the spec package knows); clear errors on bad files."""
    from ..spec.specfile import load_spec

    spec = load_spec(path)
    if _dense.is_dense(spec):  # image / text: ranked by lwdock.search.dense
        return _dense.as_dense_user(spec, source=str(path))  # type: ignore[return-value]
    return as_user_spec(spec, source=str(path))


def data_kind(path: str | Path, data_type: list[str]) -> str:
    """table, image or text: from --data-type when it names one kind, else from the file."""
    kinds = {t.lower() for t in data_type} & {"table", "image", "text"}
    if len(kinds) == 1:
        return kinds.pop()
    suffix = Path(path).suffix.lower()
    if suffix in (".txt", ".jsonl"):
        return "text"
    if suffix == ".npy":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError):
            return "table"  # the table loader reports what is wrong with the file
        return "image" if len(shape) == 4 else "table"
    return "table"


def user_spec_from_data(path: str | Path, gamma: float, *, K: int = 100, random_state: int = 0) -> UserSpec:
    """Fit the user's RKME locally from a data file; only the spec is kept, never the rows."""
    from ..spec.data import load_data
    from ..spec.rkme_table import RKMETableSpec

    X = load_data(path)
    spec = RKMETableSpec(gamma=gamma, K=K, random_state=random_state).fit(X)
    return as_user_spec(spec, source=str(path))


def _check_args(k: int, max_mixture: int, method: str) -> None:
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if max_mixture < 1:
        raise UsageError(f"max_mixture must be at least 1, got {max_mixture}")
    if method not in _mixture.METHODS:
        raise UsageError(f"unknown mixture method {method!r}; choose one of {', '.join(_mixture.METHODS)}")


def _listify(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


def search(
    dock: Any,
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
    embedder: str = "all-MiniLM-L6-v2",
    text_field: str | None = None,
) -> SearchResult:
    """Semantic filters, then (with ``user_spec``) MMD ranking and the best mixture.

    ``user_spec``: a fitted spec, a dict with z/beta/gamma, a :class:`UserSpec`, or a path to a
    spec file. ``data``: a data file (.npy/.npz/.csv) whose spec is fitted locally with the dock's
    gamma instead (the rows are not stored anywhere). ``prefilter``: True/False forces the RFF pre-filter on/off; None turns it on for
    more than ``prefilter.AUTO_THRESHOLD`` candidates. Image (N x C x H x W .npy) and text
    (.txt/.jsonl/.csv with ``text_field``) data get image/text specs; ``embedder`` picks the
    sentence embedder for text.
    """
    _check_args(k, max_mixture, method)
    if data is not None:
        if user_spec is not None:
            raise UsageError("give a user specification or a data file, not both")
        kind = data_kind(data, _listify(data_type))
        if kind == "table":
            user_spec = user_spec_from_data(data, float(dock.settings.get("gamma", 0.1)))
        else:
            user_spec = _dense.user_spec_from_data(data, kind, embedder=embedder, text_field=text_field)
    if isinstance(user_spec, (str, Path)):
        user_spec = load_user_spec(user_spec)
    dense_user = _dense.as_dense_user(user_spec) if user_spec is not None and _dense.is_dense(user_spec) else None
    user = dense_user if dense_user is not None else (as_user_spec(user_spec) if user_spec is not None else None)
    query = SemanticQuery(
        name=name, description_like=description_like, data_type=_listify(data_type), task=_listify(task),
        library=_listify(library), scenario=_listify(scenario), license=_listify(license), ids=_listify(ids),
    )
    with dock.lock():
        records = dock.entries()
        entries = entry_dicts(records)  # house branch shim
        generation = dock.generation()
        cache = ensure_current(dock, entries) if user is not None and dense_user is None else None
        group = find_group(cache, user) if cache is not None and user is not None else None
    kept, trace = filter_entries(records, query, include_unchecked)
    kept = entry_dicts(kept)  # house branch shim
    result = SearchResult(
        query={"filters": query.describe(), "include_unchecked": include_unchecked, "k": k, "max_mixture": max_mixture,
               "method": method, "prefilter": prefilter, "user_spec": user.describe() if user else None},
        dock={"path": str(dock.path), "generation": generation},
        counts={"learnwares": len(entries), "semantic_matches": len(kept)},
    )
    by_id = {e["id"]: e for e in kept}
    if not kept:
        result.explanation = _semantic_explanation(trace)
        return result
    if user is None:
        result.singles = [_single(i + 1, e, None, None) for i, e in enumerate(kept[:k])]
        return result
    if dense_user is not None:
        dstat = _dense.stat_search_dense(
            dock, dense_user, kept, k=k, max_mixture=max_mixture, method=method, prefilter=prefilter
        )
        if dstat.considered == 0:
            result.explanation = dstat.explanation
            return result
        _fill(result, dstat, dense_user, by_id)  # type: ignore[arg-type]  # DenseUser has the UserSpec fields used
        return result
    stat_ok = [e for e in kept if eligible(e)]
    if user.type not in TABLE_TYPES:
        result.explanation = f"0 of {len(kept)} matching learnwares have a {user.type} specification"
        return result
    stat = rank(group, user, set(by_id), k=k, max_mixture=max_mixture, method=method, use_prefilter=prefilter) if group else None
    if stat is None or stat.considered == 0:
        result.explanation = _stat_explanation(stat_ok, len(kept), user)
        return result
    _fill(result, stat, user, by_id)
    return result


def search_cache(
    cache: SearchCache, user_spec: Any, *, k: int = 10, max_mixture: int = 5, method: str = "greedy",
    prefilter: bool | None = None, allowed: set[str] | None = None, rerank: int | None = None,
) -> SearchResult:
    """Statistical search on a bare cache (no dock, no semantic filter); ``rerank`` overrides
    the pre-filter's exact re-rank budget (benchmarks)."""
    _check_args(k, max_mixture, method)
    user = as_user_spec(user_spec)
    group = find_group(cache, user)
    result = SearchResult(query={"k": k, "max_mixture": max_mixture, "method": method, "prefilter": prefilter,
                                 "user_spec": user.describe()})
    if group is None:
        result.explanation = f"the cache holds no table learnwares of dimension {user.dim} and gamma {user.gamma}"
        return result
    stat = rank(group, user, allowed, k=k, max_mixture=max_mixture, method=method, use_prefilter=prefilter,
                rerank=rerank)
    _fill(result, stat, user, {})
    return result


def _single(rank_: int, entry: dict[str, Any], mmd2: float | None, score: float | None) -> dict[str, Any]:
    return {
        "rank": rank_, "id": entry["id"], "alias": entry.get("alias"), "name": entry_name(entry),
        "status": entry.get("status"), "mmd2": mmd2, "score": score,
    }


def _fill(result: SearchResult, stat: StatResult, user: UserSpec, by_id: dict[str, dict[str, Any]]) -> None:
    uu = user.self_product
    scores = mmd2_to_score(stat.mmd2, uu, stat.self_products)
    result.singles = [
        _single(i + 1, by_id.get(lid, {"id": lid}), float(d), float(s))
        for i, (lid, d, s) in enumerate(zip(stat.ids, stat.mmd2, scores))
    ]
    result.counts.update(statistical_candidates=stat.considered, prefiltered=stat.prefiltered)
    if stat.mixture_ids:
        assert stat.mixture_weights is not None and stat.mixture_mmd2 is not None
        result.mixture = {
            "ids": stat.mixture_ids,
            "aliases": [by_id.get(i, {}).get("alias") for i in stat.mixture_ids],
            "weights": [float(w) for w in stat.mixture_weights],
            "mmd2": float(stat.mixture_mmd2),
            "score": float(mmd2_to_score(stat.mixture_mmd2, uu, stat.mixture_self)),
        }


def _semantic_explanation(trace: list[tuple[str, int]]) -> str:
    if trace[0][1] == 0:
        return "the dock holds no learnwares"
    for (_, before), (label, after) in zip(trace, trace[1:]):
        if after == 0:
            return f"0 of {before} learnwares pass the filter: {label}"
    return "no learnware matches"


def _fmt_counts(values: list[Any]) -> str:
    counts = collections.Counter(values)
    return ", ".join(f"{v} ({n})" for v, n in counts.most_common(5))


def _spec_meta(e: dict[str, Any]) -> dict[str, Any]:
    return next((s for s in e.get("specs") or [] if s.get("kind") == "table"), {})


def _stat_explanation(stat_ok: list[dict[str, Any]], n_kept: int, user: UserSpec) -> str:
    if not stat_ok:
        return f"0 of {n_kept} matching learnwares have a table specification"
    n = len(stat_ok)
    same_dim = [e for e in stat_ok if _spec_meta(e).get("dim") == user.dim]
    if not same_dim:
        dims = _fmt_counts([_spec_meta(e).get("dim") for e in stat_ok])
        return f"0 of {n} table learnwares have dimension {user.dim} (dimensions in the dock: {dims})"
    same_gamma = [e for e in same_dim if np.isclose(float(_spec_meta(e).get("gamma") or 0), user.gamma, rtol=1e-12, atol=0)]
    if not same_gamma:
        gammas = _fmt_counts([_spec_meta(e).get("gamma") for e in same_dim])
        return (f"0 of {len(same_dim)} table learnwares with dimension {user.dim} use gamma {user.gamma} "
                f"(they use: {gammas}); fit your spec with the dock's gamma")
    return f"the specifications of the {len(same_gamma)} matching learnwares could not be read; run `lwdock doctor`"
