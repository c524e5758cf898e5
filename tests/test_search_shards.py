"""Shards of the search store: the sharded ranking equals the unsharded one (exact pass and
pre-filter, mapped and block-read segments), and the store's shard bookkeeping keeps the
generation, tombstone and compaction rules."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwdock.search import blocks, engine, idsets, shards, store
from lwdock.search.engine import RankOptions, rank
from lwdock.search.user import as_user_spec
from lwdock.spec.rkme_table import RKMETableSpec
from test_search_engine import apply_op

# Dask workers as threads (the same actor calls, no process start-up); LWDOCK_TEST_DASK_PROCESSES=1: processes
PROCESSES = os.environ.get("LWDOCK_TEST_DASK_PROCESSES") == "1"
PROPS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N, K, D = 3000, 6, 4


def market(seed: int, n: int = N):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, size=(n, D))
    z = (centres[:, None, :] + rng.normal(size=(n, K, D))).reshape(-1, D)
    beta = rng.dirichlet(np.ones(K), size=n).ravel()
    return centres, z, beta, [f"x{i:05d}" for i in range(n)]


def chunked(ids, z, beta, size):  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        for a in range(0, len(ids), size):
            b = min(len(ids), a + size)
            yield ids[a:b], z[a * K : b * K], beta[a * K : b * K], np.arange(b - a + 1) * K

    return chunks


def users(centres, rng):  # type: ignore[no-untyped-def]
    a, b = rng.integers(len(centres), size=2)
    one = centres[a] + rng.normal(size=(20, D))
    mix = np.vstack([centres[a] + rng.normal(size=(10, D)), centres[b] + rng.normal(size=(10, D))])
    return [as_user_spec({"z": u, "beta": np.full(20, 1 / 20)}) for u in (one, mix)]


def same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.considered == b.considered and a.prefiltered == b.prefiltered
    assert a.candidates.ids == b.candidates.ids
    np.testing.assert_allclose(a.candidates.mmd2, b.candidates.mmd2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.candidates.cross, b.candidates.cross, rtol=1e-9, atol=1e-12)
    assert a.spread == pytest.approx(b.spread, rel=1e-5)


@PROPS
@given(seed=st.integers(0, 10_000), segment=st.sampled_from([250, 400, 1000]),
       shard_rows=st.sampled_from([500, 800, 1200]), rerank=st.sampled_from([30, 100, 400]))
def test_sharded_ranking_equals_unsharded(tmp_path_factory, seed, segment, shard_rows, rerank):
    """Over seeds, segment and shard sizes: the same learnwares in one shard or in several give the
    same candidates, exact values, pre-filter cut and spread; and segments read in blocks
    (``pread``, never mapped whole) give what mapped ones give."""
    centres, z, beta, ids = market(seed)
    one = store.bulk_load_chunks(tmp_path_factory.mktemp("one"), chunked(ids, z, beta, N), "float64")
    many = store.bulk_load_chunks(tmp_path_factory.mktemp("many"), chunked(ids, z, beta, segment), "float64",
                                  shard_rows=shard_rows)
    g1, gm = one.group(one.keys()[0]), many.group(many.keys()[0])
    assert len(g1.shards) == 1 and len(gm.shards) == -(-N // (shard_rows // segment * segment or segment))
    rng = np.random.default_rng(seed)
    allowed = {ids[i] for i in rng.choice(N, N // 3, replace=False)}
    for user in users(centres, rng):
        for opts, only in [(RankOptions(k=10, prefilter=False), None), (RankOptions(k=10, prefilter=True, rerank=rerank), None),
                           (RankOptions(k=5, pool=7, prefilter=True, rerank=rerank), allowed)]:
            base = rank(g1, user, only, opts)
            same(rank(gm, user, only, opts), base)
            with pytest.MonkeyPatch.context() as mp:  # every segment read through blocks.NpyFile
                mp.setattr(engine, "MAPPED_ROWS", 10)
                mp.setattr(engine, "SKETCH_BLOCK", 64)
                mp.setattr(engine, "CHUNK_BYTES", 2048)
                mp.setattr(store, "_OPENED", {})  # open the group again, with the patched threshold
                blocked = store.SegmentStore(many.directory)
                gb = blocked.group(blocked.keys()[0])
                same(rank(gb, user, only, opts), base)


def test_select_is_the_global_cut_with_ties_in_shard_order():
    parts = [np.array([3.0, 1.0, 2.0, 2.0]), np.array([2.0, 0.5]), np.array([2.0, 9.0])]
    got = shards.select(parts, 4)  # 0.5, 1.0, then two of the four 2.0s: the first in shard order
    assert [g.tolist() for g in got] == [[1, 2, 3], [1], []]
    assert [g.tolist() for g in shards.select(parts, 100)] == [[0, 1, 2, 3], [0, 1], [0, 1]]
    flat = np.concatenate(parts)
    for count in range(1, flat.size + 1):
        kept = np.concatenate([p[s] for p, s in zip(parts, shards.select(parts, count))])
        assert kept.size == count and np.array_equal(np.sort(kept), np.sort(flat)[:count])


def test_npy_file_reads_rows_runs_and_blocks(tmp_path):
    a = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "a.npy", a)
    f = blocks.NpyFile.open(tmp_path / "a.npy")
    assert f.shape == (20, 3) and np.array_equal(f.read(4, 9), a[4:9])
    starts, lens = np.array([0, 2, 5, 6, 15]), np.array([2, 1, 1, 3, 5])
    want = np.concatenate([a[s : s + n] for s, n in zip(starts, lens)])
    assert np.array_equal(f.gather(starts, lens), want)
    buf = np.full((30, 3), -1.0, dtype=np.float32)  # a reused buffer larger than the runs
    assert np.array_equal(f.gather(starts, lens, buf), want) and np.all(buf[want.shape[0]:] == -1.0)
    got = np.concatenate([b.copy() for _, b in f.blocks(3, 20, rows=4)])
    assert np.array_equal(got, a[3:])
    np.save(tmp_path / "b.npy", a[:, 0].astype(np.float64))  # one value per row (weights)
    b = blocks.NpyFile.open(tmp_path / "b.npy")
    assert np.array_equal(b.gather(starts, lens), want[:, 0])


# -- the store's shard bookkeeping ----------------------------------------------------------------
def spec(rng, c):  # type: ignore[no-untyped-def]
    s = RKMETableSpec(gamma=0.5)
    s.z_, s.beta_, s.num_points_ = c + rng.normal(size=(K, D)), rng.dirichlet(np.ones(K)), 100
    return s


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 29), min_size=1, max_size=6)),
                    min_size=1, max_size=12))
def test_sharded_store_follows_random_adds_and_removes(tmp_path_factory, ops):
    """Appends fill the smallest shard, then open new ones; removes are tombstones; compaction
    rewrites only the shards that need it; a re-added id is stored once; the generation is recorded."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shards, "SHARD_ROWS", 8)
        _random_ops(tmp_path_factory.mktemp("ops"), ops)


def _random_ops(directory, ops) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    specs = [spec(rng, c) for c in rng.uniform(-4, 4, size=(30, D))]
    live: set[int] = set()
    for gen, (add, which) in enumerate(ops):
        which = sorted(set(which))
        s = store.SegmentStore(directory, "float64")
        before = {n for sh in shards.layout(s.manifest["groups"][s.keys()[0]]) for n in sh} if s.keys() else set()
        apply_op(s, specs, gen, add, which, live)
        s = store.SegmentStore(directory)
        assert s.generation == gen
        if not s.keys():
            continue
        meta = s.manifest["groups"][s.keys()[0]]
        layout = shards.layout(meta)
        assert sorted(n for sh in layout for n in sh) == sorted(meta["segments"])  # a partition
        assert all(len(sh) <= store.MAX_SEGMENTS for sh in layout)
        g = s.group(s.keys()[0])
        sizes = [sum(g.segments[i].ids.size for i in sh) for sh in g.shards]
        assert all(n <= max(8, len(which)) for n in sizes)
        if not add:  # a remove writes no new segment except by compacting a shard into one
            assert all(n in before or len(sh) == 1 for sh in layout for n in sh)
    s = store.SegmentStore(directory)
    assert s.live() == {("table", f"lw{i}") for i in live} and not store.check(s)
    if live:
        g = s.group(s.keys()[0])
        ids = [x for seg in g.segments for x, ok in zip(seg.ids, seg.live) if ok]
        assert len(ids) == len(set(ids)) == len(live)  # every live id stored once
        user = as_user_spec({"z": specs[0].z_, "beta": specs[0].beta_})
        res = rank(g, user, None, RankOptions(k=100, pool=100, prefilter=False)).candidates
        assert set(res.ids) == {f"lw{i}" for i in live}


def test_compaction_rewrites_only_the_shard_that_needs_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_ROWS", 10)
    rng = np.random.default_rng(1)
    specs = [spec(rng, c) for c in rng.uniform(-4, 4, size=(30, D))]
    s = store.SegmentStore(tmp_path, "float64")
    for gen, part in enumerate(np.array_split(np.arange(30), 6)):  # 6 appends of 5: shards of 10
        s.apply([store.item_from_spec(f"lw{i}", specs[i]) for i in part], [], gen)
        s = store.SegmentStore(tmp_path)
    meta = s.manifest["groups"][s.keys()[0]]
    layout = shards.layout(meta)
    g = s.group(s.keys()[0])
    sizes = [sum(g.segments[i].ids.size for i in sh) for sh in g.shards]
    assert len(layout) == 3 and sizes == [10, 10, 10]  # (the kernel's rebuild at 10 wrote the first as one)

    def shard_ids(j: int) -> list[str]:
        return sorted(x.decode() for i in g.shards[j] for x in g.segments[i].ids)

    first, last = shard_ids(0), shard_ids(2)
    s.apply([], first[:3], 6)  # 3 of the first shard's 10: compacted; the others untouched
    s = store.SegmentStore(tmp_path)
    after = shards.layout(s.manifest["groups"][s.keys()[0]])
    assert after[1:] == layout[1:] and len(after[0]) == 1 and after[0][0] not in layout[0]
    assert s.manifest["groups"][s.keys()[0]]["removed"] == []
    s.apply([], [last[0]], 7)  # one of ten: a tombstone only
    s = store.SegmentStore(tmp_path)
    assert shards.layout(s.manifest["groups"][s.keys()[0]]) == after
    assert s.manifest["groups"][s.keys()[0]]["removed"] == [last[0]]
    back = [last[0], last[1]]  # re-added: one after its remove, one still stored (replaced)
    s.apply([store.item_from_spec(i, specs[int(i[2:])]) for i in back], [], 8)
    s = store.SegmentStore(tmp_path)
    g = s.group(s.keys()[0])
    ids = [x.decode() for seg in g.segments for x, ok in zip(seg.ids, seg.live) if ok]
    assert sorted(ids) == sorted(set(f"lw{i}" for i in range(30)) - set(first[:3])) and s.generation == 8
    now = shards.layout(s.manifest["groups"][s.keys()[0]])  # the new segment joined the smallest shard;
    assert now[0][0] == after[0][0] and now[1] == after[1] and now[2] != after[2]  # only the last rewritten


@settings(max_examples=25, deadline=None)
@given(stored=st.lists(st.text("abc\x00", min_size=0, max_size=9), max_size=40, unique=True),
       query=st.lists(st.text("abc", min_size=0, max_size=12), max_size=20), keep=st.booleans(),
       seed=st.integers(0, 100))
def test_id_masks_equal_isin(stored, query, keep, seed):
    """Membership by sorted 64-bit keys (then the bytes) is exactly np.isin on the ids, kept or left out."""
    ids = np.array([s.rstrip("\x00").encode() for s in stored] or [b"x"], dtype=bytes)
    cut = len(ids) // 2  # two segments
    segs = [ids[:cut], ids[cut:]]
    live = np.random.default_rng(seed).random(ids.size) < 0.8
    lives = [live[:cut], live[cut:]]
    q = idsets.Ids.of(query, keep)
    want = np.isin(ids, q.ids) if keep else ~np.isin(ids, q.ids)
    got = idsets.masks(lives, idsets.SortedIds.build(segs), q)
    assert np.array_equal(np.concatenate(got), live & want)
    # key collisions (every key equal) fall back to the exact comparison
    original = idsets.keys
    try:
        idsets.keys = lambda a: np.zeros(np.asarray(a).size, dtype=np.uint64)  # type: ignore[assignment]
        index = idsets.SortedIds.build(segs)
        assert index.collisions or ids.size < 2
        assert np.array_equal(np.concatenate(idsets.masks(lives, index, q)), live & want)
    finally:
        idsets.keys = original
    assert set((q - ["a"]).ids.tolist()) == (set(q.ids.tolist()) - {b"a"} if keep else set(q.ids.tolist()) | {b"a"})


def test_restriction_names_the_smaller_side():
    """The semantic filter's kept rows become the ids left out when those are fewer, else the kept
    ids; row sources without arrays give a set (as before)."""

    class Rows:
        ids_ = np.array([f"id{i}".encode() for i in range(10)], dtype=bytes)

        def start(self):  # type: ignore[no-untyped-def]
            return np.arange(10)

        def ids(self, sel):  # type: ignore[no-untyped-def]
            return [self.ids_[int(i)].decode() for i in sel]

    class ArrayRows(Rows):
        def id_array(self, sel):  # type: ignore[no-untyped-def]
            return self.ids_[np.asarray(sel)]

    for rows in (Rows(), ArrayRows()):
        most = idsets.restriction(rows, np.array([0, 1, 2, 3, 5, 6, 7, 8]))
        assert not most.keep and most.ids.tolist() == [b"id4", b"id9"]
        few = idsets.restriction(rows, np.array([2, 7]))
        assert few.keep and few.ids.tolist() == [b"id2", b"id7"]
    assert idsets.restriction(Rows(), [1, 3]) == {"id1", "id3"}


def test_dask_actors_rank_as_the_local_threads(tmp_path):
    """Shards owned by Dask actors on a local cluster give the in-process ranking, and actors that
    opened an older manifest reopen before they answer."""
    distributed = pytest.importorskip("dask.distributed")
    from lwdock.search.dask_shards import DaskShards

    centres, z, beta, ids = market(3)
    st_ = store.bulk_load_chunks(tmp_path, chunked(ids, z, beta, 500), "float64", shard_rows=1000)
    group = st_.group(st_.keys()[0])
    user = users(centres, np.random.default_rng(3))[1]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=PROCESSES, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        runner = DaskShards(client, str(tmp_path), group.key, len(group.shards))
        for opts in (RankOptions(k=10, prefilter=False), RankOptions(k=10, prefilter=True, rerank=100)):
            same(rank(group, user, None, opts, runner=runner), rank(group, user, None, opts))
        store.SegmentStore(tmp_path).apply([], ids[:5], 1)  # a new manifest: the actors must reopen
        now = store.SegmentStore(tmp_path)
        g2 = now.group(now.keys()[0])
        got = rank(g2, user, None, RankOptions(k=10, prefilter=False), runner=runner)
        same(got, rank(g2, user, None, RankOptions(k=10, prefilter=False)))
        assert not set(got.candidates.ids) & set(ids[:5])
