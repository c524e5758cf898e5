"""Semantic search rules: status, id/alias, Class/Tag, substring then fuzzy name match."""

from __future__ import annotations

from test_search_fixtures import entry

from lwdock.search.semantic import FUZZY_THRESHOLD, SemanticQuery, filter_entries, partial_ratio


def _names(kept):
    return [e["semantic"]["Name"]["Values"] for e in kept]


ENTRIES = [
    entry(0, "Credit risk scorer", task="Classification", scenario=["Financial", "Business"], alias="credit"),
    entry(1, "House price regressor", task="Regression", scenario=["Architecture"], library="PyTorch"),
    entry(2, "Churn predictor", task="Classification", scenario=["Internet"], license="Apache-2.0",
          description="predicts customer churn from usage logs"),
    entry(3, "Broken model", status="invalid"),
    entry(4, "Unchecked credit model", status="semantic-only", scenario=["Financial"]),
]


def test_status_rules():
    kept, _ = filter_entries(ENTRIES, SemanticQuery())
    assert "Broken model" not in _names(kept) and "Unchecked credit model" not in _names(kept)
    kept, _ = filter_entries(ENTRIES, SemanticQuery(), include_unchecked=True)
    assert "Unchecked credit model" in _names(kept) and "Broken model" not in _names(kept)


def test_class_rule_first_value_in_user_list_case_insensitive():
    kept, _ = filter_entries(ENTRIES, SemanticQuery(task=["regression"]))
    assert _names(kept) == ["House price regressor"]
    kept, _ = filter_entries(ENTRIES, SemanticQuery(task=["Regression", "Classification"], library=["Scikit-learn"]))
    assert _names(kept) == ["Credit risk scorer", "Churn predictor"]
    kept, _ = filter_entries(ENTRIES, SemanticQuery(license=["Apache-2.0"]))
    assert _names(kept) == ["Churn predictor"]


def test_tag_rule_intersection_and_empty_value_never_matches():
    kept, _ = filter_entries(ENTRIES, SemanticQuery(scenario=["Financial", "Nature"]), include_unchecked=True)
    assert _names(kept) == ["Credit risk scorer", "Unchecked credit model"]
    bare = [dict(entry(9, "no scenario"), semantic={"Name": {"Type": "String", "Values": "no scenario"},
                                                   "Scenario": {"Type": "Tag", "Values": []}})]
    assert filter_entries(bare, SemanticQuery(scenario=["Business"]))[0] == []


def test_id_prefix_and_alias():
    kept, _ = filter_entries(ENTRIES, SemanticQuery(ids=["credit"]))
    assert _names(kept) == ["Credit risk scorer"]
    kept, _ = filter_entries(ENTRIES, SemanticQuery(ids=[ENTRIES[2]["id"][:8].upper()]))
    assert _names(kept) == ["Churn predictor"]


def test_name_substring_beats_fuzzy_and_searches_description():
    kept, _ = filter_entries(ENTRIES, SemanticQuery(name="CHURN"))
    assert _names(kept) == ["Churn predictor"]
    kept, _ = filter_entries(ENTRIES, SemanticQuery(name="usage logs"))  # only in the description
    assert _names(kept) == ["Churn predictor"]


def test_fuzzy_threshold():
    # "prise" is not a substring anywhere; one typo away from "price"
    assert partial_ratio("house prise", "House price regressor") >= FUZZY_THRESHOLD
    kept, _ = filter_entries(ENTRIES, SemanticQuery(name="house prise"))
    assert _names(kept) == ["House price regressor"]
    # unrelated text stays under the threshold
    assert partial_ratio("zebra", "House price regressor") < FUZZY_THRESHOLD
    assert filter_entries(ENTRIES, SemanticQuery(name="zebra quantum"))[0] == []


def test_partial_ratio_properties():
    assert partial_ratio("abc", "xxabcxx") == 100.0
    assert partial_ratio("", "abc") == 0.0
    assert partial_ratio("abcd", "abce") == 75.0  # 3 of 4 characters: exactly at the threshold
    assert partial_ratio("abc", "xyz") == 0.0


def test_description_like_uses_description_only():
    kept, _ = filter_entries(ENTRIES, SemanticQuery(description_like="customer churn"))
    assert _names(kept) == ["Churn predictor"]
    kept, _ = filter_entries(ENTRIES, SemanticQuery(description_like="Credit risk scorer"))
    assert _names(kept) == ["Credit risk scorer"]  # its description starts with its name


def test_trace_names_the_emptying_filter():
    _, trace = filter_entries(ENTRIES, SemanticQuery(task=["Regression"], license=["GPL-3.0"]))
    assert trace[-1][1] == 0 and "License" in trace[-1][0]
