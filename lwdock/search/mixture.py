"""Mixture search: the weighted combination of a few learnwares closest to the user's RKME.

For a set S with ``K_ab = <R_a, R_b>`` and ``c_a = <user, R_a>`` the weights solve the simplex QP
``min 1/2 w'Kw - c'w, w >= 0, sum w = 1`` (:func:`lwdock.spec.qp.solve_simplex_qp`), and
``MMD^2(user, sum_a w_a R_a) = <user,user> + 2 * objective``.

* ``greedy`` (default): start from the best single; at each step try every unused candidate,
  keep the one giving the lowest MMD^2, and accept it only if that MMD^2 is at most
  :data:`GREEDY_DECAY` (0.95, the reference's value) times the current one -- i.e. it must
  cut MMD^2 by at least 5 %. Stop at ``max_mixture`` members.
* ``auto``: one QP over all candidates; walk them by weight, descending, and keep the shortest
  prefix whose cumulative weight reaches :data:`AUTO_CUTOFF` (0.98). Truncate to ``max_mixture``
  and solve again. (The reference leaves out the member that crosses the cutoff, which turns an
  exact 50/50 mixture into a single learnware; we keep it.)

A mixture of a single learnware is no mixture: ``None`` is returned (as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.qp import solve_simplex_qp

GREEDY_DECAY = 0.95
AUTO_CUTOFF = 0.98
METHODS = ("greedy", "auto")


@dataclass
class Mixture:
    members: list[int]  # positions in the candidate list
    weights: np.ndarray
    mmd2: float


def _solve(K: np.ndarray, c: np.ndarray, sel: list[int], uu: float) -> tuple[np.ndarray, float]:
    w, obj = solve_simplex_qp(K[np.ix_(sel, sel)], c[sel])
    return w, max(0.0, uu + 2.0 * obj)


def greedy(K: np.ndarray, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    n = c.size
    selected: list[int] = []
    weights = np.ones(0)
    current = np.inf
    for _ in range(min(max_mixture, n)):
        best: tuple[float, int, np.ndarray] | None = None
        for j in range(n):
            if j in selected:
                continue
            w, mmd2 = _solve(K, c, selected + [j], uu)
            if best is None or mmd2 < best[0]:
                best = (mmd2, j, w)
        if best is None:
            break
        if selected and not best[0] <= GREEDY_DECAY * current:
            break
        current, weights = best[0], best[2]
        selected.append(best[1])
    if len(selected) < 2:
        return None
    return Mixture(selected, weights, current)


def auto(K: np.ndarray, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    n = c.size
    if n < 2:
        return None
    w, _ = _solve(K, c, list(range(n)), uu)
    order = np.argsort(-w, kind="stable")
    selected: list[int] = []
    total = 0.0
    for j in order:
        selected.append(int(j))
        total += float(w[j])
        if total >= AUTO_CUTOFF:
            break
    selected = selected[:max_mixture]
    if len(selected) < 2:
        return None
    weights, mmd2 = _solve(K, c, selected, uu)
    return Mixture(selected, weights, mmd2)


def find(K: np.ndarray, c: np.ndarray, uu: float, max_mixture: int, method: str = "greedy") -> Mixture | None:
    """Mixture over candidates with pairwise matrix ``K`` and user products ``c``."""
    if max_mixture < 2 or c.size < 2:
        return None
    if method == "greedy":
        return greedy(K, c, uu, max_mixture)
    if method == "auto":
        return auto(K, c, uu, max_mixture)
    from ..errors import UsageError

    raise UsageError(f"unknown mixture method {method!r}; choose one of {', '.join(METHODS)}")
