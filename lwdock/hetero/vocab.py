"""The dock's name table in memory: normalised column name -> MiniLM vector.

Append-only and filled when names are first needed (a search, a training, ``doctor``), never at
submit, so submitting does not load the embedder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .names import normalise_name, require_name_embedder
from .store import HeteroStore


class Vocabulary:
    """Sorted normalised names (``keys``) and their vectors (``E``, float32)."""

    def __init__(self, keys: list[str], E: np.ndarray) -> None:
        self.keys = keys
        self.E = np.asarray(E, dtype=np.float32).reshape(len(keys), -1)
        self.row = {k: i for i, k in enumerate(keys)}

    def rows(self, names: Iterable[str]) -> np.ndarray:
        return np.array([self.row[normalise_name(n)] for n in names], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)


def ensure_names(store: HeteroStore, names: Iterable[str], embedder: Any = None) -> Vocabulary:
    """The name table with the normalised ``names`` it lacked embedded and added (call under the lock)."""
    keys, E = store.read_names()
    missing = sorted({normalise_name(n) for n in names} - set(keys))
    if missing:
        embedder = embedder or require_name_embedder()
        new = np.asarray(embedder.encode(missing), dtype=np.float32)
        old = E.reshape(len(keys), -1) if keys else np.zeros((0, new.shape[1]), np.float32)
        store.write_names(keys + missing, np.concatenate([old, new]))
        keys, E = store.read_names()
    return Vocabulary(keys, E)
