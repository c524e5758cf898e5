"""Shards owned by Dask actors: the two rounds of a query run where a shard's files are opened.

An option beside the default in-process threads (:class:`lwdock.search.engine.LocalShards`),
for the team dock's Dask cluster (docs/batch.md, docs/scaling.md)::

    with DaskShards(client, store_directory, group_key) as runner:
        rank(group, user, allowed, opts, runner=runner)

Each :class:`ShardActor` lives on a worker, opens the group from the store directory (a shared
file system) and answers round 1 (approximate values of its shard's picks) and round 2 (exact
pass, its best candidates) with the engine's own functions; the coordinator (the caller of
``rank``) merges exactly and computes the mixture from the merged candidates' rows, which it
reads from its own opened group. Before every query the runner compares each actor's opened
manifest entry with the coordinator's and has lagging actors reopen (the store's generation
rule, per shard). This prototype's actor opens the group's every segment (mapped: only its own
shard's pages are read); a deployment would open only its shard.

dask is an optional dependency (``pip install 'lwdock[dask]'``), imported only here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import engine
from .store import Group, SegmentStore


def _signature(group: Group | None) -> str:
    return json.dumps(group.meta if group is not None else None, sort_keys=True)


class ShardActor:
    """One shard of a group, opened on a Dask worker."""

    def __init__(self, directory: str, key: str, index: int) -> None:
        self.directory, self.key, self.index = directory, key, index
        self.group: Group | None = None
        self.reopen()

    def reopen(self) -> str:
        self.group = SegmentStore(self.directory).group(self.key)
        return _signature(self.group)

    def signature(self) -> str:
        return _signature(self.group)

    def approx(self, unit: list[Any], us: np.ndarray, bounded: bool = False) -> np.ndarray:
        assert self.group is not None
        return engine.shard_approx(self.group, unit, us, bounded)

    def exact(self, unit: list[Any], user: engine.MappedUser, opts: engine.RankOptions, keep_all: bool) -> Any:
        assert self.group is not None
        return engine.shard_exact(self.group, user, unit, opts, keep_all)


class DaskShards:
    """An :class:`~lwdock.search.engine.ShardRunner` over one actor per shard of a group."""

    def __init__(self, client: Any, directory: str, key: str, shards: int) -> None:
        self.client = client
        self.actors = [client.submit(ShardActor, str(directory), key, i, actor=True).result() for i in range(shards)]

    def _sync(self, group: Group) -> None:
        want = _signature(group)
        stale = [a for a, sig in zip(self.actors, [a.signature() for a in self.actors]) if sig.result() != want]
        for sig in [a.reopen() for a in stale]:
            if sig.result() != want:
                raise RuntimeError("a shard actor opened a different store generation than the coordinator")

    def approx(self, group: Group, units: list[engine.Unit], us: np.ndarray, bounded: bool = False) -> list[np.ndarray]:
        self._sync(group)
        return [f.result() for f in [self.actors[i].approx(unit, us, bounded) for i, unit in units]]

    def exact(self, group: Group, units: list[engine.Unit], user: engine.MappedUser, opts: engine.RankOptions,
              keep_all: bool) -> list[Any]:
        self._sync(group)
        return [f.result() for f in [self.actors[i].exact(unit, user, opts, keep_all) for i, unit in units]]

    def close(self) -> None:
        self.actors = []

    def __enter__(self) -> DaskShards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
