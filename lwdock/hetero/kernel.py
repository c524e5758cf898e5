"""The kernel of the trained map's space: RBF on unit vectors, ``exp(-|a - b|^2)``."""

from __future__ import annotations

import numpy as np

MAP_GAMMA = 1.0  # |a - b|^2 = 2 - 2 a.b lies in [0, 4] for unit vectors


def unit_rbf(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    G = np.asarray(A, dtype=np.float64) @ np.asarray(B, dtype=np.float64).T
    return np.exp(-MAP_GAMMA * np.maximum(2.0 - 2.0 * G, 0.0))


def self_term(E: np.ndarray, w: np.ndarray) -> float:
    """``w' K w`` of an embedded set."""
    return float(w @ unit_rbf(E, E) @ w)


def mmd2(Eu: np.ndarray, wu: np.ndarray, self_u: float, El: np.ndarray, wl: np.ndarray, self_l: float) -> float:
    return max(self_u + self_l - 2.0 * float(wu @ unit_rbf(Eu, El) @ wl), 0.0)
