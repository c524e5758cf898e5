"""Training the hetero map after a submit when its retraining rule fires.

Deciding reads two small files (the index and the map's manifest) and imports nothing heavy;
torch is imported only when the rule fires. ``lwdock.Dock.submit`` calls :func:`train_if_due`.
"""

from __future__ import annotations

import logging
from typing import Any

from .maintain import eligible_of, open_store, rule_fires
from .names import name_embedder_available

logger = logging.getLogger("lwdock")


def map_due(dock: Any) -> str | None:
    """Why the map must be trained now, or None (also None when the index cannot be read)."""
    store = open_store(dock)
    try:
        with dock.lock():
            return rule_fires(store.read_manifest(), eligible_of(store.read_index()))
    except (OSError, ValueError) as exc:
        logger.warning("hetero map: cannot read the index (%s); `lwdock doctor` repairs it", exc)
        return None


def train_if_due(dock: Any, cfg: Any = None) -> dict[str, Any] | None:
    """Train when the rule fires (``cfg``: a :class:`lwdock.hetero.encoder.MapConfig`, default
    when None); the training manifest, or None when it did not fire."""
    fired = map_due(dock)
    if not fired or not name_embedder_available():
        return None
    from .mapping import train_map  # torch: only when a map is trained

    logger.info("%s; training it now", fired)
    return train_map(dock, cfg) if cfg is not None else train_map(dock)
