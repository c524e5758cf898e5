"""Which of the user's columns is which of a learnware's: names first, values as a check.

1. Name similarity ``S[i, j]``: cosine of the MiniLM embeddings of the normalised names
   (identical normalised names count 1.0).
2. Rank consistency ``C[i, j]``: rank correlations survive unit changes and log transforms,
   so a candidate pair whose rank-correlation profile against the sure pairs ("anchors":
   ``S >= ANCHOR`` and mutually best) agrees is more likely right:
   ``C = 1 - mean_k |rho_user(i, k) - rho_lw(j, m(k))|``; NaN without anchors.
3. A one-to-one assignment (Hungarian) on ``S + RANK_WEIGHT * C``, restricted to pairs with
   ``S >= tau``: values alone never match columns (they confuse correlated columns).

A matched pair is a "same feature" when no other name in the dock is clearly closer to the
user's column (``S >= vocab_best - MARGIN``) or when the values vouch for it
(``C >= CONSISTENT``); otherwise it is a *proxy*: a related column standing in, kept because a
correlated proxy beats imputing (measured on both benchmark scenarios).

Each pair gets a 1-D transform from the user's column to the learnware's, chosen from the two
weighted marginals (:func:`choose_transform`). Thresholds are heuristics tuned on the two
benchmark scenarios (docs/heterogeneous.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import QUANTILES, TableStats, weighted_quantiles

TAU = 0.6  # least name similarity of a matched pair (the gate of search)
ANCHOR = 0.85  # pairs this similar and mutually best anchor the rank-consistency check
RANK_WEIGHT = 0.3
MARGIN = 0.05  # vocabulary margin of a "same feature"
CONSISTENT = 0.9  # rank consistency that makes a pair a "same feature" whatever the margin
SAME_NAME = 0.95  # near-identical names: identity unless the values are wildly apart
SCALE_OK, SHIFT_OK = 3.0, 3.0  # identity window (sd ratio, mean shift in sds) for other pairs
SAME_SCALE_OK, SAME_SHIFT_OK = 10.0, 10.0
NON_AFFINE_PENALTY = 0.02  # prefer the plain affine map on near-ties

IDENTITY, AFFINE, LOG_AFFINE, EXP_AFFINE, IMPUTED = 0, 1, 2, 3, -1
KIND_NAMES = {IDENTITY: "identity", AFFINE: "affine", LOG_AFFINE: "log-affine", EXP_AFFINE: "exp-affine"}


@dataclass(frozen=True)
class Pair:
    """One matched column pair and the transform ``x_lw = a * t(x_user) + b``."""

    user: int
    learnware: int
    similarity: float
    same: bool
    kind: int = IDENTITY
    a: float = 1.0
    b: float = 0.0


def name_similarity(U: np.ndarray, L: np.ndarray, user_keys: list[str], lw_keys: list[str]) -> np.ndarray:
    """Cosine similarities (rows: user names, columns: learnware names); equal normalised names -> 1."""
    S = np.asarray(U, dtype=np.float64) @ np.asarray(L, dtype=np.float64).T
    same = np.asarray(user_keys, dtype=object)[:, None] == np.asarray(lw_keys, dtype=object)[None, :]
    S[same] = 1.0
    return S


def rank_consistency(Ru: np.ndarray, Rl: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``C[i, j]`` from the two rank-correlation matrices and the anchors of ``S`` (NaN: no evidence)."""
    du, dl = S.shape
    C = np.full(S.shape, np.nan)
    if du < 2 or dl < 2:
        return C
    best = (S >= ANCHOR) & (S >= S.max(axis=1, keepdims=True)) & (S >= S.max(axis=0, keepdims=True))
    ak, am = np.nonzero(best)
    if ak.size == 0:
        return C
    D = np.abs(Ru[:, ak][:, None, :] - Rl[:, am][None, :, :])  # du x dl x anchors
    use = (np.arange(du)[:, None, None] != ak[None, None, :]) & (np.arange(dl)[None, :, None] != am[None, None, :])
    n = use.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        C = np.where(n > 0, 1.0 - (D * use).sum(axis=2) / np.maximum(n, 1), np.nan)
    return C


def assign(S: np.ndarray, C: np.ndarray, tau: float = TAU) -> list[tuple[int, int]]:
    """One-to-one pairs maximising ``S + RANK_WEIGHT * C`` among pairs with ``S >= tau``."""
    allowed = S >= tau
    if not allowed.any():
        return []
    score = S + RANK_WEIGHT * np.nan_to_num(C, nan=0.0)
    rows = np.flatnonzero(allowed.any(axis=1))
    cols = np.flatnonzero(allowed.any(axis=0))
    sub = np.where(allowed[np.ix_(rows, cols)], -score[np.ix_(rows, cols)], 1e6)
    # scipy.optimize costs ~0.5 s to import: only a search of a table with named columns pays it
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(sub)
    return sorted((int(rows[i]), int(cols[j])) for i, j in zip(r, c) if allowed[rows[i], cols[j]])


def match_columns(user: TableStats, lw: TableStats, S: np.ndarray, vocab_best: np.ndarray | None = None,
                  tau: float = TAU, transforms: bool = True) -> list[Pair]:
    """Matched pairs of ``user``'s and ``lw``'s columns, each with its transform (when asked)."""
    C = rank_consistency(user.spearman, lw.spearman, S)
    pairs = assign(S, C, tau)
    out = []
    for i, j in pairs:
        sim = float(S[i, j])
        same = bool((vocab_best is None or sim >= vocab_best[i] - MARGIN) or np.nan_to_num(C[i, j], nan=-1) >= CONSISTENT)
        kind, a, b = choose_transform(user, i, lw, j, sim) if transforms else (IDENTITY, 1.0, 0.0)
        out.append(Pair(i, j, sim, same, kind, a, b))
    return out


def apply_kind(kind: int, x: np.ndarray) -> np.ndarray:
    if kind == LOG_AFFINE:
        return np.log(np.maximum(x, 1e-12))
    if kind == EXP_AFFINE:
        return np.exp(np.clip(x, -50.0, 50.0))
    return x


def choose_transform(user: TableStats, i: int, lw: TableStats, j: int, sim: float) -> tuple[int, float, float]:
    """``(kind, a, b)`` with ``x_lw = a * t(x_user) + b``.

    The identity keeps a genuine shift between the two populations visible; it is chosen when
    the spreads agree within a factor ``SCALE_OK`` and the means within ``SHIFT_OK`` sds (for
    near-identical names: unless the values are wildly apart, factor 10 / 10 sds, which is the
    same name in other units). Otherwise the best of affine, log + affine and exp + affine by
    the residual of matching the 19 weighted quantiles (a > 0 only).
    """
    mu_u, sd_u, mu_l, sd_l = user.mean[i], user.sd[i], lw.mean[j], lw.sd[j]
    ratio, shift = sd_u / sd_l, abs(mu_u - mu_l) / sd_l
    scale_ok, shift_ok = (SAME_SCALE_OK, SAME_SHIFT_OK) if sim >= SAME_NAME else (SCALE_OK, SHIFT_OK)
    if 1.0 / scale_ok <= ratio <= scale_ok and shift <= shift_ok:
        return IDENTITY, 1.0, 0.0
    xu = user.raw_z[:, i]
    ql = lw.quantiles[:, j]
    best = (np.inf, AFFINE, float(sd_l / sd_u), float(mu_l - sd_l / sd_u * mu_u))  # moment matching
    for kind in (AFFINE, LOG_AFFINE, EXP_AFFINE):
        if (kind == LOG_AFFINE and np.min(xu) <= 0) or (kind == EXP_AFFINE and np.max(xu) > 30):
            continue
        qt = weighted_quantiles(apply_kind(kind, xu), user.weights, QUANTILES)[:, 0]
        if np.ptp(qt) <= 0:
            continue
        a, b = np.polyfit(qt, ql, 1)
        if not a > 0:
            continue
        res = float(np.sqrt(np.mean((a * qt + b - ql) ** 2)) / sd_l) + NON_AFFINE_PENALTY * (kind != AFFINE)
        if res < best[0]:
            best = (res, kind, float(a), float(b))
    return best[1], best[2], best[3]
