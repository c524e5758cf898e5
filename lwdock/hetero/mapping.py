"""The trained map of a dock: training, loading, refreshing the hetero specs.

**Retraining rule** (:func:`lwdock.hetero.maintain.rule_fires`). The map is due once the
dock has at least 20 eligible learnwares, and again whenever the number of eligible learnwares
or of distinct normalised column names has grown by 50 % since the last training. ``lwdock
doctor`` reports a due map and trains it (under the dock lock, from seed 0); :func:`train_map`
trains on demand. Training is never started by a submit: it takes tens of seconds at 1,000
learnwares, and a submit must stay fast. The new map is written with every learnware's
embedded reduced set (the hetero specs) in one replacement; learnwares added later are
embedded with the current map by the next search or ``doctor``. Without a map, search ranks
by names and column importance alone: the map is an extra ranking term, never a random one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import __version__
from ..errors import UsageError
from .encoder import MapConfig, TrainedMap, train
from .kernel import self_term
from .maintain import MIN_LEARNWARES, catch_up, eligible_of, n_names, open_store, rule_fires
from .names import NAME_EMBEDDER, name_embedder_available, require_name_embedder
from .store import HeteroStore, Record
from .vocab import Vocabulary, ensure_names

logger = logging.getLogger("lwdock")

MAP_FORMAT = "lwdock.hetero-map"


def load_map(store: HeteroStore) -> tuple[TrainedMap, dict[str, Any]] | None:
    manifest = store.read_manifest()
    if manifest is None:
        return None
    return TrainedMap(store.read_weights(), MapConfig(**manifest["config"])), manifest


def embed_learnware(tm: TrainedMap, store: HeteroStore, rec: Record, vocab: Vocabulary) -> tuple[np.ndarray, float]:
    """A learnware's hetero spec under the map: its embedded reduced set and its self term."""
    stats, _ = store.read_stats(rec.id, rec.names)
    E = tm.embed(stats.z, vocab.E[vocab.rows(rec.names)])
    return E, self_term(E, stats.weights)


def train_map(dock: Any, cfg: MapConfig = MapConfig(), *, force: bool = False) -> dict[str, Any]:
    """Train the map on every eligible learnware now and refresh every hetero spec.

    Raises UsageError below ``MIN_LEARNWARES`` eligible learnwares unless ``force``.
    Returns the training manifest (with timings).
    """
    store = open_store(dock)
    embedder = require_name_embedder()
    embedder.encode(["warm up"])  # load MiniLM before taking the lock
    with dock.lock():
        eligible = eligible_of(catch_up(dock, dock.entries()))
        if not eligible or (len(eligible) < MIN_LEARNWARES and not force):
            raise UsageError(f"the hetero map trains from {MIN_LEARNWARES} eligible learnwares; this dock has "
                             f"{len(eligible)}", hint="until then search ranks by column names alone; "
                             "--force trains anyway (from one learnware up)")
        vocab = ensure_names(store, [n for r in eligible.values() for n in r.names], embedder)
        sets = []
        for rec in eligible.values():
            stats, _ = store.read_stats(rec.id, rec.names)
            sets.append((stats.z, vocab.rows(rec.names)))
        counted = n_names(eligible)
    weights, info = train(sets, vocab.E, cfg)
    with dock.lock():
        records = eligible_of(store.read_index())
        vocab = ensure_names(store, [n for r in records.values() for n in r.names], embedder)
        t0 = time.perf_counter()
        tm = TrainedMap(weights, cfg)
        embeddings = {i: embed_learnware(tm, store, r, vocab) for i, r in records.items()}
        manifest = {"format": MAP_FORMAT, "config": cfg.to_dict(), "embedder": NAME_EMBEDDER,
                    "learnwares": len(eligible), "names": counted, "lwdock_version": __version__,
                    "embed_seconds": time.perf_counter() - t0, **info}
        store.write_map(manifest, weights, embeddings)
    logger.info("hetero map trained on %d learnwares in %.1f s", len(eligible), info["train_seconds"])
    return manifest


def refresh_or_train(dock: Any, records: Mapping[str, Record]) -> list[str]:
    """``doctor``'s part (under the lock): fill the name table, train when due, embed the rest."""
    store = open_store(dock)
    eligible = eligible_of(records)
    done: list[str] = []
    if not eligible or not name_embedder_available():
        return done
    before = len(store.read_names()[0])
    vocab = ensure_names(store, [n for r in eligible.values() for n in r.names])
    if len(vocab) > before:
        done.append(f"embedded {len(vocab) - before} column names")
    if rule_fires(store.read_manifest(), eligible):
        manifest = train_map(dock)
        done.append(f"trained the hetero map on {manifest['learnwares']} learnwares in {manifest['train_seconds']:.1f} s")
        return done
    loaded = load_map(store)
    if loaded is not None:
        missing = sorted(set(eligible) - store.embedded_ids())
        for lw_id in missing:
            store.write_embedding(lw_id, *embed_learnware(loaded[0], store, eligible[lw_id], vocab))
        if missing:
            done.append(f"embedded {len(missing)} learnwares with the hetero map")
    return done
