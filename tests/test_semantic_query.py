"""One semantic filter: SemanticQuery on records, the same rules for `list` and `search`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from _factory import learnware_zip
from lwdock.records import Entry
from lwdock.search.api import search
from lwdock.search.semantic import FUZZY_THRESHOLD, SemanticQuery, _may_reach, partial_ratio


def _entry(i: int, name: str, *, alias: str | None = None, description: str = "", task: str = "Classification",
           scenario: tuple[str, ...] = ("Business",), status: str = "usable") -> Entry:
    semantic = {"Name": {"Type": "String", "Values": name},
                "Description": {"Type": "String", "Values": description or name},
                "Task": {"Type": "Class", "Values": [task]},
                "Scenario": {"Type": "Tag", "Values": list(scenario)}}
    return Entry(f"{i:064x}", semantic, status, alias=alias)


ENTRIES = [
    _entry(1, "credit risk scorer", alias="credit", scenario=("Financial",)),
    _entry(2, "house prices", alias="homes", task="Regression", scenario=("Architecture", "Business")),
    _entry(3, "churn predictor", description="customer churn from usage logs", status="semantic-only"),
]


def _names(entries):
    return [e.semantic.name for e in entries]


def test_matches_is_the_rule_for_one_learnware():
    q = SemanticQuery.from_filters(task=["regression", "classification"], scenario="business")
    assert [q.matches(e) for e in ENTRIES] == [False, True, True]
    assert SemanticQuery.from_filters(name="HOMES").matches(ENTRIES[1])  # aliases count, case is ignored
    assert not SemanticQuery.from_filters(name="crdit risk").matches(ENTRIES[0])
    assert SemanticQuery.from_filters(name="crdit risk").matches(ENTRIES[0], fuzzy=True)
    assert SemanticQuery.from_filters(ids=ENTRIES[2].id[:6].upper()).matches(ENTRIES[2])


def test_select_falls_back_to_fuzzy_only_when_nothing_contains_the_text():
    assert _names(SemanticQuery(name="usage logs").select(ENTRIES)) == ["churn predictor"]
    assert _names(SemanticQuery(name="prices").select(ENTRIES)) == ["house prices"]
    assert _names(SemanticQuery(name="house prizes").select(ENTRIES)) == ["house prices"]
    assert SemanticQuery(name="zebra crossing").select(ENTRIES) == []
    # index documents are accepted and come back as they were given
    docs = [e.to_dict() for e in ENTRIES]
    assert SemanticQuery(task=["Regression"]).select(docs) == [docs[1]]


def test_list_and_search_select_the_same_learnwares(dock, tmp_path):
    for i, name in enumerate(["alpha credit", "beta credit", "gamma house"]):
        dock.submit(learnware_zip(tmp_path / f"{i}.zip", seed=i, name=name), run_model=False,
                    alias=f"lw{i}")
    for filters in ({"name": "credit"}, {"name": "lw2"}, {"name": "gamm hose"}, {"task": ["Regression"]},
                    {"scenario": ["Business", "Nature"], "name": "beta"}):
        listed = {e.id for e in dock.list(**filters)}
        found = set(search(dock, include_unchecked=True, k=100, **filters).ids)
        assert listed == found, filters


@settings(max_examples=300, deadline=None)
@given(st.text("abcdeé xyz", min_size=1, max_size=12), st.text("abcdeé xyz", min_size=1, max_size=30))
def test_the_cheap_bound_never_drops_a_fuzzy_match(needle, text):
    if partial_ratio(needle, text) >= FUZZY_THRESHOLD:
        assert _may_reach(needle, text)
