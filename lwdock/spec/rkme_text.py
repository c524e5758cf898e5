"""Text RKME: a table RKME fitted on sentence embeddings.

The embedder is named in the spec (``embedder_``, ``embedding_dim_``); two text specs are
comparable only when both were made by the same embedder. Language detection is not done:
``language_`` is always ``[]`` (the reference's langdetect is unseeded and needs an extra package).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputDataError
from . import specfile
from .embedders import DEFAULT_EMBEDDER, get_embedder
from .rkme_table import RKMETableSpec


def as_texts(X: Any) -> list[str]:
    """``X`` as a list of str (a list/tuple/array of strings); anything else is an error."""
    if isinstance(X, str):
        raise InputDataError("text data must be a list of strings, not one string")
    if isinstance(X, np.ndarray):
        if X.dtype.kind not in "US" and not (X.dtype.kind == "O" and all(isinstance(x, str) for x in X.ravel())):
            raise InputDataError(f"text data must hold strings, got dtype {X.dtype}")
        X = X.ravel().tolist()
    try:
        texts = list(X)
    except TypeError:
        raise InputDataError(f"text data must be a list of strings, got {type(X).__name__}") from None
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise InputDataError(f"text item {bad} is {type(texts[bad]).__name__}, not str")
    if not texts:
        raise InputDataError("the text data is empty")
    return texts


class RKMETextSpec(RKMETableSpec):
    """RKME text specification: the table RKME (all its hyperparameters) on embeddings.

    Extra parameters: ``embedder`` (registry name, default ``all-MiniLM-L6-v2``; ``hashing-384``
    needs no extra package) and ``batch_size`` for the embedder. ``gamma=None`` (the default) is
    the median heuristic on the embeddings themselves (unit vectors: no standardisation);
    a number is used as given (the reference used 0.1).
    """

    codec = specfile.TEXT
    type = "RKMETextSpecification"
    auto_standardise = False

    # every hyperparameter is spelled out (no **kwargs): scikit-learn's get_params reads the signature
    def __init__(
        self,
        gamma: float | None = None,
        K: int = 100,
        steps: int = 5,
        embedder: str = DEFAULT_EMBEDDER,
        batch_size: int = 64,
        step_size: float = 1.0,
        nonnegative_beta: bool = True,
        random_state: int | None = 0,
        device: str = "cpu",
        max_samples: int | None = None,
        kmeans_samples: int = 5_000,
        kmeans_iter: int = 10,
        min_dist: float = 0.05,
        n_threads: int | None = None,
    ) -> None:
        super().__init__(gamma=gamma, K=K, steps=steps, step_size=step_size, nonnegative_beta=nonnegative_beta,
                         random_state=random_state, device=device, max_samples=max_samples,
                         kmeans_samples=kmeans_samples, kmeans_iter=kmeans_iter, min_dist=min_dist,
                         n_threads=n_threads)
        self.embedder = embedder
        self.batch_size = batch_size

    def embed(self, texts: Any, progress=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        """The ``n x dim`` float64 embeddings of ``texts`` under this spec's embedder."""
        texts = as_texts(texts)
        kwargs = {"device": str(self.device or "cpu"), "batch_size": int(self.batch_size)} \
            if self.embedder in (DEFAULT_EMBEDDER, "minilm") else {}
        emb = get_embedder(self.embedder, **kwargs)
        E = emb.encode(texts, progress=progress)
        self.embedder_ = emb.name
        self.embedding_dim_ = int(emb.dim)
        return E

    def fit(self, X, progress=None) -> RKMETextSpec:  # type: ignore[no-untyped-def,override]
        """Embed the strings ``X`` and fit the table RKME on the embeddings."""
        E = self.embed(X, progress=progress)
        super().fit(E)
        self.language_: list[str] = []
        return self

    def _check_embedder(self, other: Any) -> None:
        if not isinstance(other, RKMETextSpec):
            raise InputDataError(f"cannot compare a text specification with {type(other).__name__}")
        a, b = getattr(self, "embedder_", None), getattr(other, "embedder_", None)
        if a != b:
            raise InputDataError(
                f"text specifications made by different embedders ({a!r} vs {b!r}) live in different "
                "embedding spaces and cannot be compared",
                hint=f"rebuild one of them with --embedder {a or b}",
            )

    def inner_prod(self, other: RKMETableSpec) -> float:
        self._check_embedder(other)
        return super().inner_prod(other)

    def search_space(self) -> dict[str, Any]:
        return {"embedder": str(getattr(self, "embedder_", None) or self.embedder), "dim": self.dim}

    def __repr__(self) -> str:
        state = f"K={self.z_.shape[0]}, d={self.z_.shape[1]}" if hasattr(self, "z_") else "unfitted"
        return f"RKMETextSpec(embedder={getattr(self, 'embedder_', self.embedder)!r}, {state})"
