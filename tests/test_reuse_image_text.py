"""Reuse of image and text learnwares through a real dock and the sandboxed runner."""

from __future__ import annotations

import numpy as np
import pytest
from _dense_market import GROUPS

from lwdock.errors import InputDataError, UsageError
from lwdock.reuse.api import load_ensemble, reuse
from lwdock.reuse.base import InProcessPredictor

pytestmark = pytest.mark.slow  # image and text markets through sandboxed workers


@pytest.fixture(scope="module")
def image_dock(tmp_path_factory, image_market):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("img-reuse")
    market = image_market
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, run_model=False).id for z in market.zips(base)]
    return dock, ids, market, base


@pytest.fixture(scope="module")
def text_dock(tmp_path_factory, text_market):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("txt-reuse")
    market = text_market
    dock = Dock.init(base / "dock")
    ids = [dock.submit(z, run_model=False).id for z in market.zips(base)]
    return dock, ids, market, base


def test_image_averaging_through_the_runner_beats_the_mean_learnware(image_dock, tmp_path):
    dock, ids, market, _ = image_dock
    X, y = market.user(1, n=300, frac=0.4, seed=50)  # a broad mix: every learnware knows only part of it
    singles = [float(np.mean(m.predict(X.reshape(len(X), -1)) == y)) for m in market.models]
    with reuse(dock, ids, "average", data=X) as ens:  # sandboxed workers (the default)
        assert ens.input_schema["kind"] == "image" and ens.input_schema["shape"] == [1, 8, 8]
        pred = ens.predict(X)
        acc = float(np.mean(pred == y))
        path = ens.save(tmp_path / "img.lwe")
        with pytest.raises(InputDataError, match="shape"):
            ens.predict(np.zeros((2, 1, 9, 9)))
    assert acc > np.mean(singles) + 0.1, (acc, singles)
    with load_ensemble(path, dock) as again:
        assert np.array_equal(again.predict(X), pred)
    # uint8 images are accepted as they are (the wrapper casts)
    with reuse(dock, ids[:2], "average", data=X.astype(np.uint8)) as ens:
        assert ens.predict(X.astype(np.uint8)).shape == (len(X),)


def test_image_job_selector_is_refused_with_the_reason(image_dock):
    dock, ids, market, _ = image_dock
    X, _ = market.user(0, n=50, seed=3)
    with pytest.raises(UsageError, match="does not support image learnwares.*pixel space"):
        reuse(dock, ids, "job-selector", data=X, trusted=True)


def test_text_averaging_through_the_runner(text_dock, tmp_path):
    dock, ids, market, _ = text_dock
    texts, y = market.user(GROUPS, n_per_class=30, seed=60)
    singles = [float(np.mean(m.predict(texts) == y)) for m in market.models]
    with reuse(dock, ids, "average", data=texts) as ens:
        assert ens.input_schema["kind"] == "text"
        acc = float(np.mean(ens.predict(texts) == y))
        path = ens.save(tmp_path / "txt.lwe")
        with pytest.raises(InputDataError, match="list of strings"):
            ens.predict(np.zeros((3, 4)))
    assert acc > np.mean(singles) + 0.2, (acc, singles)
    with load_ensemble(path, dock) as again:
        assert float(np.mean(again.predict(texts) == y)) == acc


def test_text_job_selector_routes_by_embedding(text_dock, tmp_path):
    dock, ids, market, _ = text_dock
    texts, y = market.user(GROUPS, n_per_class=30, seed=70)
    group_of_class = np.repeat(np.arange(len(GROUPS)), 2)  # two sub-topics (classes) per group
    with reuse(dock, ids, "job-selector", data=texts) as ens:  # sandboxed workers get the raw strings
        pred = ens.predict(texts)
        routed = ens.reuser.routed_
        path = ens.save(tmp_path / "js.lwe")
    assert ens.reuser.embedder_ == "hashing-384"
    assert np.mean(routed == group_of_class[y]) > 0.8
    assert np.mean(pred == y) > 0.8
    with load_ensemble(path, dock) as again:
        assert np.array_equal(again.predict(texts), pred)


def test_text_job_selector_in_process_uses_given_weights(text_dock):
    from lwdock.reuse.job_selector import JobSelectorReuser

    _, _, market, _ = text_dock
    texts, y = market.user([GROUPS[0], GROUPS[1]], n_per_class=20, seed=80)
    handles = [InProcessPredictor(m, id=f"t{i}") for i, m in enumerate(market.models)]
    js = JobSelectorReuser(handles, specs=market.specs, n_classes=market.n_classes, weights=[0.5, 0.5, 0.0]).fit(texts)
    routes = js.route(texts)
    assert set(np.unique(routes)) <= {0, 1, 2} and np.mean(routes == np.repeat([0, 1, 2], 2)[y]) > 0.8
    # without weights they come from the user's text RKME: group 2 gets (almost) nothing
    js2 = JobSelectorReuser(handles, specs=market.specs, n_classes=market.n_classes).fit(texts)
    assert js2.weights_[2] < 0.1 and js2.weights_[:2].min() > 0.3


def test_reuse_job_reads_text_and_image_files(text_dock, image_dock, tmp_path):
    from lwdock.batch.predict import predict_files
    from lwdock.reuse.jobs import reuse_job

    tdock, tids, tmarket, _ = text_dock
    texts, y = tmarket.user(GROUPS, n_per_class=5, seed=90)
    f = tmp_path / "user.txt"
    f.write_text("\n".join(texts) + "\n")
    out = reuse_job(tdock, tids, "average", data=f, output=tmp_path / "t.lwe", trusted=True)
    assert out["n_predicted"] == len(texts) and np.mean(np.array(out["predictions"]) == y) > 0.8
    res = predict_files(tdock, tmp_path / "t.lwe", [str(f)], str(tmp_path / "p.npy"), trusted=True)
    assert res["rows"] == len(texts) and np.array_equal(np.load(tmp_path / "p.npy"), out["predictions"])
    idock, iids, imarket, _ = image_dock
    X, _ = imarket.user(2, n=20, seed=91)
    np.save(tmp_path / "imgs.npy", X)
    out = reuse_job(idock, iids, "average", data=tmp_path / "imgs.npy", trusted=True)
    assert out["n_predicted"] == 20
