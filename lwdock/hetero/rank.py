"""Ranking learnwares whose columns differ from the user's (pure functions over arrays).

1. One GEMM: the user's name vectors against the dock's whole name table (``S_all``).
2. Gate: a learnware is a candidate when one of its names is similar (cosine >= ``tau``) to a
   user column. None at all: the "no shared features" answer.
3. A lower bound of each candidate's score from the gate alone (a column with no similar user
   name can only be imputed), then exact evaluation in bound order, stopping once ``k`` hits
   are better than the next bound: the top ``k`` are exact without matching every candidate.
4. Score (lower is better) = relative damage of the columns the user cannot supply
   (:func:`lwdock.hetero.importance.damage`), plus the trained map's MMD between the embedded
   reduced sets when a map exists. Ties: more shared columns first, then the id.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .importance import damage
from .matching import KIND_NAMES, TAU, match_columns, name_similarity
from .names import normalise_name
from .stats import TableStats


@dataclass(frozen=True)
class Candidate:
    id: str
    names: Sequence[str]
    rows: np.ndarray  # rows of its normalised names in the name table
    importance: np.ndarray


@dataclass
class HeteroHit:
    """One heterogeneous result: why it ranks where it does, and which columns it shares."""

    id: str
    score: float
    damage: float
    damage_rel: float
    map_mmd2: float | None
    shared: list[dict[str, Any]] = field(default_factory=list)
    imputed: list[str] = field(default_factory=list)
    n_columns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rank_score": self.score, "damage": self.damage, "damage_rel": self.damage_rel,
                "map_mmd2": self.map_mmd2, "shared_columns": self.shared, "imputed_columns": self.imputed,
                "n_columns": self.n_columns}


@dataclass
class Ranking:
    hits: list[HeteroHit]
    gated: int  # candidates sharing at least one similar name
    evaluated: int  # candidates matched exactly


def similarities(U: np.ndarray, user_names: Sequence[str], vocab_E: np.ndarray, vocab_keys: Sequence[str]) -> np.ndarray:
    """``S_all`` (user columns x name table)."""
    if len(vocab_keys) == 0:
        return np.zeros((len(user_names), 0))
    return name_similarity(U, vocab_E, [normalise_name(n) for n in user_names], list(vocab_keys))


def rank(user: TableStats, S_all: np.ndarray, candidates: Sequence[Candidate], load: Callable[[str], TableStats],
         k: int, map_term: Callable[[str, TableStats], float] | None = None, tau: float = TAU) -> Ranking:
    """The ``k`` best candidates (exact), with their shared and imputed columns explained."""
    vocab_best = S_all.max(axis=1) if S_all.size else np.zeros(S_all.shape[0])
    col_hit = (S_all.max(axis=0) >= tau) if S_all.size else np.zeros(0, dtype=bool)
    queue = []
    for c in candidates:
        hit = col_hit[c.rows]
        if hit.any():
            queue.append((damage(c.importance, hit)[1], c.id, c))
    queue.sort(key=lambda t: (t[0], t[1]))
    by_id = {c.id: c for c in candidates}
    worst: list[tuple[float, int, tuple[int, ...]]] = []  # the k best so far, worst on top (negated keys)
    found: dict[str, tuple[HeteroHit, TableStats, np.ndarray, int]] = {}
    for bound, _, c in queue:
        if len(worst) >= k and bound > -worst[0][0]:
            break
        lw = load(c.id)
        S = S_all[:, c.rows]
        pairs = match_columns(user, lw, S, vocab_best, tau, transforms=False)
        supplied = np.zeros(lw.d, dtype=bool)
        supplied[[p.learnware for p in pairs]] = True
        dmg, rel = damage(c.importance, supplied)
        mmd = map_term(c.id, lw) if map_term is not None else None
        score = rel + (mmd or 0.0)
        found[c.id] = (HeteroHit(c.id, score, dmg, rel, mmd, n_columns=lw.d), lw, S, len(pairs))
        key = (-score, len(pairs), tuple(-ord(ch) for ch in c.id))  # larger = better
        if len(worst) < k:
            heapq.heappush(worst, key)
        elif key > worst[0]:
            heapq.heapreplace(worst, key)
    order = sorted(found.values(), key=lambda t: (t[0].score, -t[3], t[0].id))[:k]
    hits = [_explain(h, user, lw, S, vocab_best, by_id[h.id].names, tau) for h, lw, S, _ in order]
    return Ranking(hits, len(queue), len(found))


def _explain(hit: HeteroHit, user: TableStats, lw: TableStats, S: np.ndarray, vocab_best: np.ndarray,
             lw_names: Sequence[str], tau: float) -> HeteroHit:
    pairs = match_columns(user, lw, S, vocab_best, tau, transforms=True)
    hit.shared = [{"user": user.names[p.user], "learnware": lw_names[p.learnware], "similarity": round(p.similarity, 3),
                   "relation": "same feature" if p.same else "proxy", "transform": KIND_NAMES[p.kind]}
                  for p in sorted(pairs, key=lambda p: p.learnware)]
    matched = {p.learnware for p in pairs}
    hit.imputed = [lw_names[j] for j in range(lw.d) if j not in matched]
    return hit
