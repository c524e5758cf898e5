"""Mixture search: the weighted combination of a few learnwares closest to the user's RKME.

For a set S with ``K_ab = <R_a, R_b>`` and ``c_a = <user, R_a>`` the weights solve the simplex QP
``min 1/2 w'Kw - c'w, w >= 0, sum w = 1`` (:func:`simplex_qp`: an exact active-set method for
the few variables a mixture has, cvxopt above :data:`ACTIVE_SET_UP_TO`), and
``MMD^2(user, sum_a w_a R_a) = <user,user> + 2 * objective``.

* ``qp`` (default): one QP over the best :data:`QP_POOL` (10) candidates of the final ranking;
  members are those with at least :data:`MIN_SHARE` (1 %) of the weight, the ``max_mixture``
  heaviest of them, solved again. Measured better than ``greedy`` for averaging on every
  paper-style scenario (docs/search.md).
* ``greedy``: start from the best single; at each step try every unused candidate,
  keep the one giving the lowest MMD^2, and accept it only if that MMD^2 is at most
  :data:`GREEDY_DECAY` (0.95, the reference's value) times the current one -- i.e. it must
  cut MMD^2 by at least 5 %. Stop at ``max_mixture`` members.
* ``auto``: one QP over all candidates; walk them by weight, descending, and keep the shortest
  prefix whose cumulative weight reaches :data:`AUTO_CUTOFF` (0.98). Truncate to ``max_mixture``
  and solve again. (The reference leaves out the member that crosses the cutoff, which turns an
  exact 50/50 mixture into a single learnware; we keep it.)

A mixture of a single learnware is no mixture: ``None`` is returned (as in the reference).

Speed (same answers as trying every candidate, see ``greedy_reference`` and the
tests): ``K`` may be a :class:`Gram` that computes a row only when a candidate joins the
mixture (greedy needs at most ``max_mixture`` rows of the candidates' Gram matrix, not all of
it). Each greedy step screens all candidates at once with :func:`screen`, which solves the
small simplex QPs exactly by enumerating active sets, then solves the chosen set with
:func:`simplex_qp` (the weights and MMD^2 reported and compared against the 0.95 factor).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..spec.qp import solve_simplex_qp

GREEDY_DECAY = 0.95
AUTO_CUTOFF = 0.98
QP_POOL = 10
MIN_SHARE = 0.01
METHODS = ("qp", "greedy", "auto")


@dataclass
class Mixture:
    members: list[int]  # positions in the candidate list
    weights: np.ndarray
    mmd2: float


class Gram:
    """Candidates' Gram matrix ``K_ab = <R_a, R_b>``, computed a row at a time on demand.

    ``diag``: the self products (known in advance); ``row_fn(i)`` returns row ``i``.
    """

    def __init__(self, diag: np.ndarray, row_fn: Callable[[int], np.ndarray]) -> None:
        self.diag = np.asarray(diag, dtype=np.float64)
        self._row_fn = row_fn
        self._rows: dict[int, np.ndarray] = {}

    @property
    def n(self) -> int:
        return int(self.diag.size)

    def row(self, i: int) -> np.ndarray:
        if i not in self._rows:
            r = np.array(self._row_fn(i), dtype=np.float64)
            r[i] = self.diag[i]
            self._rows[i] = r
        return self._rows[i]

    def sub(self, sel: list[int]) -> np.ndarray:
        M = np.array([self.row(i)[sel] for i in sel])
        return 0.5 * (M + M.T)

    def full(self) -> np.ndarray:
        return self.sub(list(range(self.n)))


def _as_gram(K: Any) -> Gram:
    if isinstance(K, Gram):
        return K
    K = np.asarray(K, dtype=np.float64)
    return Gram(np.diag(K).copy(), lambda i: K[i])


def _solve(K: np.ndarray, c: np.ndarray, sel: list[int], uu: float) -> tuple[np.ndarray, float]:
    w, obj = simplex_qp(K[np.ix_(sel, sel)], c[sel])
    return w, max(0.0, uu + 2.0 * obj)


ACTIVE_SET_UP_TO = 64  # simplex QPs this small are solved by the active-set method; cvxopt above


def simplex_qp(K: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """``min 1/2 w'Kw - c'w`` on the simplex: :func:`active_set_qp` for up to
    :data:`ACTIVE_SET_UP_TO` variables (cvxopt above, or if it does not converge)."""
    if c.size <= ACTIVE_SET_UP_TO:
        found = active_set_qp(K, c)
        if found is not None:
            return found
    return solve_simplex_qp(K, c)


def active_set_qp(K: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The simplex QP by the primal active-set method, exact to rounding (None if it has not
    converged in ``10 n + 20`` steps). From the best vertex: solve the equality-constrained
    problem on the free weights (one KKT system); step to it, or as far as the first weight that
    would turn negative, which leaves the free set; at the solution of the free set, free the
    zero weight with the most negative multiplier, stop when none is negative. Each step solves
    one system of at most ``n + 1`` unknowns: ~0.2 ms at 10 variables against cvxopt's ~1.5 ms."""
    K0 = 0.5 * (np.asarray(K, dtype=np.float64) + np.asarray(K, dtype=np.float64).T)
    c = np.asarray(c, dtype=np.float64).ravel()
    n = c.size
    scale = max(float(np.mean(np.abs(np.diag(K0)))), float(np.max(np.abs(c), initial=0.0)), 1e-300)
    K = K0 + 1e-12 * scale * np.eye(n)  # keeps a rank-deficient K solvable (identical learnwares)
    tol = 1e-12 * scale
    j = int(np.argmin(0.5 * np.diag(K) - c))
    free, w = [j], np.zeros(n)
    w[j] = 1.0
    for _ in range(10 * n + 20):
        f = len(free)
        A = np.ones((f + 1, f + 1))
        A[:f, :f] = K[np.ix_(free, free)]
        A[f, f] = 0.0
        sol = np.linalg.solve(A, np.append(c[free], 1.0))
        p, nu = sol[:f], sol[f]
        if np.all(p >= 0.0):
            w[:] = 0.0
            w[free] = p
            mu = K @ w - c + nu  # the zero weights' multipliers (Kw - c = -nu 1 + mu)
            mu[free] = np.inf
            i = int(np.argmin(mu))
            if mu[i] >= -tol:
                w /= w.sum()
                return w, float(0.5 * w @ K0 @ w - c @ w)
            free.append(i)
            continue
        d = p - w[free]
        shrinking = np.nonzero(d < 0.0)[0]
        ratios = w[free][shrinking] / -d[shrinking]
        b = int(shrinking[int(np.argmin(ratios))])
        w[free] += min(1.0, float(ratios.min())) * d
        w[free[b]] = 0.0
        free.pop(b)
    return None


def screen(KPP: np.ndarray, KPj: np.ndarray, Kjj: np.ndarray, cP: np.ndarray, cj: np.ndarray, prev_obj: float) -> np.ndarray:
    """Optimal objective of ``min 1/2 w'Kw - c'w`` on the simplex over ``P + [j]`` for every
    candidate j at once (P: the current members, p <= 4 of them).

    A convex QP's optimum is the best feasible point among the equality-constrained solutions
    of its supports; supports without j give at best ``prev_obj`` (the optimum over P), so only
    the 2^p supports containing j are solved, each as one batched KKT solve over all candidates.
    """
    p, m = KPP.shape[0], cj.size
    best = np.full(m, prev_obj)
    scale = max(float(np.mean(Kjj)) if m else 1.0, 1e-300)
    for size in range(p + 1):
        for S in itertools.combinations(range(p), size):
            s = len(S) + 1
            idx = list(S)
            A = np.zeros((m, s + 1, s + 1))
            A[:, : s - 1, : s - 1] = KPP[np.ix_(idx, idx)]
            A[:, : s - 1, s - 1] = KPj[:, idx]
            A[:, s - 1, : s - 1] = KPj[:, idx]
            A[:, s - 1, s - 1] = Kjj
            A[:, :s, :s] += 1e-12 * scale * np.eye(s)  # keeps a rank-deficient K solvable
            A[:, :s, s] = 1.0
            A[:, s, :s] = 1.0
            rhs = np.zeros((m, s + 1))
            rhs[:, : s - 1] = cP[idx]
            rhs[:, s - 1] = cj
            rhs[:, s] = 1.0
            w = np.linalg.solve(A, rhs[..., None])[..., 0][:, :s]
            ok = np.all(w >= -1e-12, axis=1)
            if not ok.any():
                continue
            Kw = np.einsum("mab,mb->ma", A[:, :s, :s], w)
            obj = 0.5 * np.einsum("ma,ma->m", w, Kw) - np.einsum("ma,ma->m", rhs[:, :s], w)
            best = np.where(ok & (obj < best), obj, best)
    return best


def greedy(K: Any, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    """Forward selection; ``K``: an (n, n) array or a :class:`Gram`."""
    G = _as_gram(K)
    c = np.asarray(c, dtype=np.float64)
    n = c.size
    selected: list[int] = []
    weights = np.ones(0)
    current, cur_obj = np.inf, np.inf
    for _ in range(min(max_mixture, n)):
        free = np.ones(n, bool)
        free[selected] = False
        cand = np.nonzero(free)[0]
        if cand.size == 0:
            break
        if not selected:
            obj = 0.5 * G.diag[cand] - c[cand]
        else:
            KPj = np.array([G.row(i)[cand] for i in selected]).T
            obj = screen(G.sub(selected), KPj, G.diag[cand], c[selected], c[cand], cur_obj)
        j = int(cand[int(np.argmin(obj))])
        sel = selected + [j]
        # the candidate's column comes from the members' rows: its own row is only computed
        # if it joins
        Ksel = np.empty((len(sel), len(sel)))
        if selected:
            Ksel[:-1, :-1] = G.sub(selected)
            Ksel[:-1, -1] = Ksel[-1, :-1] = [G.row(i)[j] for i in selected]
        Ksel[-1, -1] = G.diag[j]
        w, o = simplex_qp(Ksel, c[sel])
        mmd2 = max(0.0, uu + 2.0 * o)
        if selected and not mmd2 <= GREEDY_DECAY * current:
            break
        current, cur_obj, weights = mmd2, o, w
        selected.append(j)
    if len(selected) < 2:
        return None
    return Mixture(selected, weights, current)


def greedy_reference(K: np.ndarray, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    """The straightforward greedy (one cvxopt QP per candidate per step), for tests."""
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


def auto(K: Any, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    K = _as_gram(K).full() if isinstance(K, Gram) else np.asarray(K, dtype=np.float64)
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


def qp(K: Any, c: np.ndarray, uu: float, max_mixture: int) -> Mixture | None:
    """One QP over every candidate; keep the weights of at least :data:`MIN_SHARE`, at most
    ``max_mixture`` of them (the heaviest), and solve again over those."""
    K = _as_gram(K).full() if isinstance(K, Gram) else np.asarray(K, dtype=np.float64)
    n = c.size
    if n < 2:
        return None
    w, mmd2 = _solve(K, c, list(range(n)), uu)
    order = [int(j) for j in np.argsort(-w, kind="stable") if w[j] >= MIN_SHARE][:max_mixture]
    if len(order) < 2:
        return None
    if len(order) == np.count_nonzero(w):  # every weight kept: the optimum over them is this one
        return Mixture(order, w[order] / w[order].sum(), mmd2)
    weights, mmd2 = _solve(K, c, order, uu)
    return Mixture(order, weights, mmd2)


def pool_size(method: str, max_mixture: int) -> int:
    """How many of the best candidates a method looks at."""
    return QP_POOL if method == "qp" else max(2, max_mixture**2)


def find(K: Any, c: np.ndarray, uu: float, max_mixture: int, method: str = "qp") -> Mixture | None:
    """Mixture over candidates with pairwise matrix ``K`` and user products ``c``."""
    if max_mixture < 2 or c.size < 2:
        return None
    if method == "qp":
        return qp(K, c, uu, max_mixture)
    if method == "greedy":
        return greedy(K, c, uu, max_mixture)
    if method == "auto":
        return auto(K, c, uu, max_mixture)
    raise UsageError(f"unknown mixture method {method!r}; choose one of {', '.join(METHODS)}")
