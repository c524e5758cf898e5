"""Issue 14 in the library: one label spelling, the table reader's header and label-column rules,
column alignment by name, and reusers that combine learnwares by label value and column name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

from lwdock.errors import InputDataError, UsageError
from lwdock.format import labels as lab
from lwdock.format.pack import PackOptions, pack
from lwdock.reuse.api import reuse
from lwdock.spec.data import align_columns, common_order, read_table

# -- labels ---------------------------------------------------------------------------


def test_one_spelling_per_label():
    assert {lab.canonical(v) for v in (3, 3.0, "3", " 3 ", np.int64(3), np.float32(3.0), b"3")} == {"3"}
    assert lab.canonical("barolo ") == "barolo" and lab.canonical(0.5) == "0.5" and lab.canonical(True) == "True"
    assert lab.sort_labels([10, 2, "2", 1.0]) == ["1", "2", "10"]  # numbers by value, as numpy.unique
    assert lab.sort_labels(["b", "a", 3]) == ["3", "a", "b"]


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=30))
def test_sorted_integer_labels_match_numpy(values):
    assert lab.sort_labels(values) == [str(v) for v in np.unique(values)]
    classes = lab.sort_labels(values)
    np.testing.assert_array_equal(lab.encode(np.asarray(values, dtype=float), classes),
                                  np.searchsorted(np.unique(values), values))


def test_unknown_labels_are_listed():
    with pytest.raises(InputDataError, match="not among the learnwares' classes: merlot") as exc:
        lab.encode(["barolo", "merlot"], ["barbera", "barolo"])
    assert "barbera, barolo" in exc.value.hint
    assert lab.merge_classes([["a", "b"], ["a", "b"]]) == ["a", "b"]
    assert lab.merge_classes([["b", "c"], ["a", "b"]]) == ["a", "b", "c"]


# -- the table reader -----------------------------------------------------------------


def _csv(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_header_rules(tmp_path):
    named = read_table(_csv(tmp_path, "a,b,label\n1,2,x\n3,4,y\n"), "label")
    assert named.columns == ("a", "b") and named.y.tolist() == ["x", "y"] and named.X.tolist() == [[1, 2], [3, 4]]
    pandas_default = read_table(_csv(tmp_path, "0,1,2\n5,6,7\n8,9,10\n"))
    assert pandas_default.columns is None and pandas_default.X.shape == (2, 3)  # the header is not a row
    pandas_index = read_table(_csv(tmp_path, ",0,1,2\n0,5,6,7\n1,8,9,10\n"))
    assert pandas_index.columns is None and pandas_index.X.tolist() == [[5, 6, 7], [8, 9, 10]]
    no_header = read_table(_csv(tmp_path, "5,6,7\n8,9,10\n"))
    assert no_header.columns is None and no_header.X.shape == (2, 3)
    by_index = read_table(_csv(tmp_path, "1,2,x\n3,4,y\n"), -1)
    assert by_index.y.tolist() == ["x", "y"] and by_index.X.shape == (2, 2)


def test_a_text_column_is_named_with_a_hint(tmp_path):
    with pytest.raises(InputDataError, match="line 2, column label: non-numeric value 'x'") as exc:
        read_table(_csv(tmp_path, "a,b,label\n1,2,x\n"))
    assert "--label-column label" in exc.value.hint
    with pytest.raises(UsageError, match="label column 'kind' is not in"):
        read_table(_csv(tmp_path, "a,b,label\n1,2,x\n"), "kind")


def test_npz_and_frames_name_their_columns(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "d.npz", X=X, feature_names=np.array(["p", "q", "r"]), y=np.array(["u", "v", "u", "v"]))
    t = read_table(tmp_path / "d.npz", "y")
    assert t.columns == ("p", "q", "r") and t.y.tolist() == ["u", "v", "u", "v"]
    df = pd.DataFrame({"p": [1.0, 2.0], "q": [3, 4], "kind": ["a", "b"]})
    t = read_table(df, "kind")
    assert t.columns == ("p", "q") and t.y.tolist() == ["a", "b"] and t.X.dtype == np.float64
    assert read_table(pd.DataFrame(X)).columns is None  # pandas' 0..d-1 names nothing


def test_columns_align_by_name():
    X = np.array([[1.0, 2.0, 3.0]])
    out, note = align_columns(X, ["c", "a", "b"], ["a", "b", "c"])
    assert out.tolist() == [[2.0, 3.0, 1.0]] and note is None
    with pytest.raises(InputDataError, match="missing d; extra c"):
        align_columns(X, ["a", "b", "c"], ["a", "b", "d"])
    out, note = align_columns(X, None, ["a", "b", "c"])
    assert out is X and "no column names" in note
    assert common_order(["b", "a"], [["x", "y"], ["a", "b"], None, ["b", "a"], ["a", "b"]]) == ["a", "b"]
    assert common_order(["b", "a"], [["a", "c"]]) is None


# -- reusers: label values and column names ---------------------------------------------


def test_learnwares_with_other_labels_and_column_orders_combine_by_value(dock, tmp_path):
    wine = load_wine()
    cols = [n.replace("/", "_") for n in wine.feature_names]
    names = np.array(["barolo", "grignolino", "barbera"])[wine.target]
    frame = pd.DataFrame(wine.data, columns=cols)
    parts = {"a": (["barolo", "barbera"], cols), "b": (["barbera", "grignolino"], cols[::-1])}
    models, ids = {}, []
    for key, (kept, order) in parts.items():
        rows = np.isin(names, kept)
        models[key] = LogisticRegression(max_iter=5000).fit(frame.loc[rows, order].to_numpy(), names[rows])
        (tmp_path / f"{key}.pkl").write_bytes(__import__("pickle").dumps(models[key]))
        train = frame.loc[rows, order].assign(label=names[rows])
        pack(tmp_path / f"{key}.pkl", tmp_path / f"{key}.zip", {"Task": "Classification", "Name": key},
             train_data=train, options=PackOptions(label_column="label", gamma=1e-4, K=20))
        ids.append(dock.submit(tmp_path / f"{key}.zip", env_manager="none").id)
    test = frame.sample(frac=1.0, random_state=0).iloc[:40]
    with reuse(dock, ids, "average") as ens:
        assert list(ens.classes_) == ["barbera", "barolo", "grignolino"]
        proba = ens.predict_proba(test)  # a DataFrame in the natural order: aligned by name for b
        labels = ens.predict(test[cols[::-1]])  # the same rows, the columns the other way round
    expected = np.zeros((len(test), 3))
    for key, (kept, order) in parts.items():
        p = models[key].predict_proba(test[order].to_numpy())
        for j, c in enumerate(models[key].classes_):
            expected[:, ["barbera", "barolo", "grignolino"].index(c)] += p[:, j] / 2
    np.testing.assert_allclose(proba, expected, atol=1e-9)
    assert labels.tolist() == np.array(["barbera", "barolo", "grignolino"])[expected.argmax(1)].tolist()
