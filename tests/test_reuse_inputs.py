"""Input validation of the reuse library: each bad input gets a one-line InputDataError."""

from __future__ import annotations

import numpy as np
import pytest
from test_reuse_market import DIM, N_CLASSES, Market

from lwdock.errors import InputDataError, ModelRuntimeError, UsageError
from lwdock.reuse.api import build_ensemble, read_selection
from lwdock.reuse.base import InProcessPredictor, check_y
from lwdock.reuse.pruning import EnsemblePruningReuser


@pytest.fixture(scope="module")
def ens():
    m = Market(seed=1, n_learnwares=3)
    X, y = m.user(200)
    return build_ensemble(m.predictors(), "average", "classification", N_CLASSES, data=X), X, y, m


@pytest.mark.parametrize(
    "bad, msg",
    [
        (lambda X: X[:, :-1], f"has {DIM - 1} features"),
        (lambda X: X.astype(str), "numeric data is required"),
        (lambda X: X.astype(object), "numeric data is required"),
        (lambda X: X[:0], "no rows"),
        (lambda X: X[0], "1-D"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), "NaN"),
    ],
)
def test_bad_prediction_inputs(ens, bad, msg):
    e, X, _, _ = ens
    with pytest.raises(InputDataError, match=msg):
        e.predict(bad(X))


def test_chunked_prediction_equals_one_pass(ens):
    e, X, _, _ = ens
    np.testing.assert_array_equal(e.predict(X, chunk_size=7), e.predict(X))
    with pytest.raises(UsageError):
        e.predict(X, chunk_size=0)


def test_labels_must_match_task(ens):
    _, X, y, m = ens
    with pytest.raises(InputDataError, match="not integers"):
        check_y(y + 0.25, len(y), "classification", N_CLASSES)
    with pytest.raises(InputDataError, match="classes 0..9"):
        check_y(y - 1 - y.max(), len(y), "classification", N_CLASSES)
    with pytest.raises(InputDataError, match="dtype"):
        check_y(y.astype(str), len(y), "regression", None)
    with pytest.raises(InputDataError, match="labels for"):
        EnsemblePruningReuser(m.predictors(), n_classes=N_CLASSES).fit(X, y[:-1])


def test_broken_learnware_output_is_a_runtime_error(ens):
    _, X, _, _ = ens

    class Bad:
        def predict(self, X):
            return np.full((len(X), N_CLASSES + 1), 1.0 / (N_CLASSES + 1))

    class Short:
        def predict(self, X):
            return np.zeros(len(X) - 1)

    for model, msg in ((Bad(), "columns"), (Short(), "rows")):
        with pytest.raises(ModelRuntimeError, match=msg):
            build_ensemble([InProcessPredictor(model)], "average", "classification", N_CLASSES, data=X)


def test_selection_forms():
    assert read_selection("a1b2,c3d4") == (["a1b2", "c3d4"], None)
    assert read_selection(["a1b2"]) == (["a1b2"], None)
    assert read_selection({"mixture": {"ids": ["x", "y"], "weights": [0.3, 0.7]}}) == (["x", "y"], [0.3, 0.7])
    assert read_selection({"singles": [{"id": "s", "score": 1}], "mixture": {"ids": []}}) == (["s"], None)
    with pytest.raises(UsageError):
        read_selection({"singles": [], "mixture": {}})
    with pytest.raises(UsageError):  # the pre-release key is not read any more
        read_selection({"single": [{"id": "s"}], "mixture": {}})


def test_read_selection_reads_the_search_json_schema():
    # the real `lwdock search --json` shape: no mixture -> every single, uniform weights
    # (docs/search.md); the SearchResult itself is accepted too (issue 15)
    from lwdock.search.result import MixtureHit, SearchResult, Single

    found = SearchResult(singles=[Single(1, "top1"), Single(2, "second")], mixture=None)
    assert read_selection(found.to_dict()) == (["top1", "second"], None)
    assert read_selection(found) == (["top1", "second"], None)
    found.mixture = MixtureHit(("a", "b"), (None, None), (0.25, 0.75), 0.1, 0.9)
    assert read_selection(found.to_dict()) == (["a", "b"], [0.25, 0.75])
    assert read_selection(found) == (["a", "b"], [0.25, 0.75])


def test_read_selection_names_a_file_that_is_not_a_search_result(tmp_path):
    bad = tmp_path / "found.txt"
    bad.write_text("not json")
    with pytest.raises(InputDataError, match="not a JSON search result"):
        read_selection(bad)
