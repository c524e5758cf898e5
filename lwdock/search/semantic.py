"""The one semantic filter, used by ``lwdock list`` and ``lwdock search`` alike.

Rules (the reference's, with the differences noted):

* ``ids``: a learnware matches when its alias equals one of the values or its id starts with
  one (case-insensitive).
* Class keys (``data_type``, ``task``, ``library``, ``license``): the learnware's value must be
  one of the user's values. Tag keys (``scenario``): the two value sets must intersect. A
  learnware with no value for a key the user filters on does not match. Comparison ignores case
  (the reference's is case-sensitive).
* ``name``: a case-insensitive substring of the learnware's Name, Description or alias. Only
  when no learnware matches that way, a fuzzy stage keeps the learnwares whose best
  :func:`partial_ratio` against those texts is at least :data:`FUZZY_THRESHOLD` (75 of 100, the
  reference's value), best first. (The reference ignores aliases; lwdock has them.)
* ``description_like``: the same substring-then-fuzzy rule against the Description alone (the
  reference ignores the user's Description; we offer it as a separate filter).
* Several values of one key are OR-ed; different keys are AND-ed.

Status is not part of the query: ``list`` shows every status unless ``--status`` says
otherwise; ``search`` never returns ``invalid`` learnwares and returns ``semantic-only`` ones
only with ``include_unchecked`` (:func:`filter_entries`).

:meth:`SemanticQuery.matches` is the rule for one learnware (text filters as substrings, or
fuzzily with ``fuzzy=True``); :meth:`SemanticQuery.select` applies it to a dock's entries with
the fuzzy fallback above. Both take :class:`~lwdock.records.Entry` records (index documents are
accepted and returned as they were given).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..records import INVALID, SEMANTIC_ONLY, USABLE, Entry

FUZZY_THRESHOLD = 75.0
CLASS_KEYS = {"data_type": "Data", "task": "Task", "library": "Library", "license": "License"}
TAG_KEYS = {"scenario": "Scenario"}
# texts each text filter reads
NAME_FIELDS = ("name", "description", "alias")
DESCRIPTION_FIELDS = ("description",)

T = TypeVar("T", Entry, Mapping[str, Any])


def _listify(v: str | Iterable[str] | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


@dataclass
class SemanticQuery:
    name: str | None = None
    description_like: str | None = None
    data_type: list[str] = field(default_factory=list)
    task: list[str] = field(default_factory=list)
    library: list[str] = field(default_factory=list)
    scenario: list[str] = field(default_factory=list)
    license: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @classmethod
    def from_filters(
        cls,
        *,
        name: str | None = None,
        description_like: str | None = None,
        data_type: str | Iterable[str] | None = None,
        task: str | Iterable[str] | None = None,
        library: str | Iterable[str] | None = None,
        scenario: str | Iterable[str] | None = None,
        license: str | Iterable[str] | None = None,  # noqa: A002 - the semantic key's name
        ids: str | Iterable[str] | None = None,
    ) -> SemanticQuery:
        """A query from keyword filters; each key takes one value or several."""
        return cls(name=name or None, description_like=description_like or None, data_type=_listify(data_type),
                   task=_listify(task), library=_listify(library), scenario=_listify(scenario),
                   license=_listify(license), ids=_listify(ids))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("name", "description_like", "data_type", "task", "library", "scenario", "license", "ids"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    def matches(self, entry: Entry | Mapping[str, Any], *, fuzzy: bool = False) -> bool:
        """Whether one learnware passes every filter: text filters as substrings, or (``fuzzy``)
        with a :func:`partial_ratio` of at least :data:`FUZZY_THRESHOLD`."""
        source = RecordSource([Entry.coerce(entry)])
        sel = source.start()
        for _, kind, key, values in self._key_rules():
            sel = _keep(source, sel, kind, key, values)
        for _, text, fields in self._text_rules():
            if fuzzy:
                memo: dict[str, float] = {}
                sel = [i for i, texts in zip(sel, source.texts(sel, fields)) if _fuzzy_texts(texts, text, memo)]
            else:
                sel = source.keep_substring(sel, text, fields)
        return bool(sel)

    def select(self, entries: Sequence[T]) -> list[T]:
        """The entries that match, with the fuzzy fallback of each text filter (see the module doc)."""
        source = RecordSource([Entry.coerce(e) for e in entries])
        return [entries[i] for i in self.apply(source, source.start())]

    def apply(self, source: RowSource, sel: Any, trace: list[tuple[str, int]] | None = None) -> Any:
        """The rows of ``sel`` that pass every rule, in rule order (``trace``: step, count after it).
        ``source`` is a list of records (:class:`RecordSource`), the dock's summary or an SQL index:
        the rules are these, whatever holds the rows."""
        for label, kind, key, values in self._key_rules():
            sel = _keep(source, sel, kind, key, values)
            if trace is not None:
                trace.append((label, source.size(sel)))
        for label, text, fields in self._text_rules():
            sel = _text_stage(source, sel, text, fields)
            if trace is not None:
                trace.append((label, source.size(sel)))
        return sel

    # -- the rules, in the order they are applied (and explained) ------------------------------
    def _key_rules(self) -> list[tuple[str, str, str, Any]]:
        """(label, kind, semantic key, values): kind "ids" (lowercased refs), "class" or "tag"
        (lowercased wanted values)."""
        rules: list[tuple[str, str, str, Any]] = []
        if self.ids:
            refs = [r.lower() for r in self.ids if r]
            rules.append((f"id/alias {','.join(self.ids)}", "ids", "", refs))
        for attr, key in CLASS_KEYS.items():
            wanted = {w.lower() for w in getattr(self, attr) if w}
            if wanted:
                rules.append((f"{key} in {{{', '.join(getattr(self, attr))}}}", "class", key, wanted))
        for attr, key in TAG_KEYS.items():
            wanted = {w.lower() for w in getattr(self, attr) if w}
            if wanted:
                rules.append((f"{key} among {{{', '.join(getattr(self, attr))}}}", "tag", key, wanted))
        return rules

    def _text_rules(self) -> list[tuple[str, str, tuple[str, ...]]]:
        rules = []
        if self.name and self.name.strip():
            rules.append((f"name like {self.name!r}", self.name.lower().strip(), NAME_FIELDS))
        if self.description_like and self.description_like.strip():
            rules.append((f"description like {self.description_like!r}", self.description_like.lower().strip(),
                          DESCRIPTION_FIELDS))
        return rules


class RowSource(Protocol):
    """What the rules need from a set of learnwares. A selection (``sel``) is opaque to the rules:
    positions in a list, rows of the summary, a WHERE clause; it keeps the source's order (the
    index's), except after a fuzzy stage, which orders it best first."""

    def start(self) -> Any: ...  # every row
    def size(self, sel: Any) -> int: ...
    def status_counts(self) -> Mapping[str, int]: ...  # every row's stored status ("" for none)
    def keep_status(self, sel: Any, allowed: set[str]) -> Any: ...
    def keep_ids(self, sel: Any, refs: list[str]) -> Any: ...  # alias == ref (ignoring case) or id prefix
    def keep_class(self, sel: Any, key: str, wanted: set[str]) -> Any: ...  # first value, lowercased, in wanted
    def keep_tags(self, sel: Any, key: str, wanted: set[str]) -> Any: ...  # a lowercased value in wanted
    def keep_substring(self, sel: Any, needle: str, fields: tuple[str, ...]) -> Any: ...  # in a field, ignoring case
    def texts(self, sel: Any, fields: tuple[str, ...]) -> list[list[str]]: ...  # non-empty texts, per row of sel
    def take(self, sel: Any, order: list[int]) -> Any: ...  # the rows at these places of sel, in this order


class RecordSource:
    """:class:`RowSource` over a list of records; a selection is a list of positions. This is the
    reference the summary and the SQL index are tested against."""

    def __init__(self, records: Sequence[Entry]) -> None:
        self.records = records

    def start(self) -> list[int]:
        return list(range(len(self.records)))

    def size(self, sel: list[int]) -> int:
        return len(sel)

    def status_counts(self) -> Counter[str]:
        return Counter(r.status for r in self.records)

    def keep_status(self, sel: list[int], allowed: set[str]) -> list[int]:
        return [i for i in sel if self.records[i].status in allowed]

    def keep_ids(self, sel: list[int], refs: list[str]) -> list[int]:
        return [i for i in sel if _id_ok(self.records[i], refs)]

    def keep_class(self, sel: list[int], key: str, wanted: set[str]) -> list[int]:
        return [i for i in sel if (self.records[i].semantic.value(key) or "").lower() in wanted]

    def keep_tags(self, sel: list[int], key: str, wanted: set[str]) -> list[int]:
        return [i for i in sel if {v.lower() for v in self.records[i].semantic.value(key)} & wanted]

    def keep_substring(self, sel: list[int], needle: str, fields: tuple[str, ...]) -> list[int]:
        return [i for i in sel if any(needle in t.lower() for t in _texts(self.records[i], fields))]

    def texts(self, sel: list[int], fields: tuple[str, ...]) -> list[list[str]]:
        return [_texts(self.records[i], fields) for i in sel]

    def take(self, sel: list[int], order: list[int]) -> list[int]:
        return [sel[j] for j in order]

    # what search reads of the rows it kept (the summary has the same methods)
    def entries(self, sel: list[int]) -> list[Entry]:
        return [self.records[i] for i in sel]

    def ids(self, sel: list[int]) -> list[str]:
        return [self.records[i].id for i in sel]

    def entries_by_id(self, ids: Iterable[str]) -> dict[str, Entry]:
        wanted = set(ids)
        return {r.id: r for r in self.records if r.id in wanted}

    def count_kind(self, sel: list[int], kind: str) -> int:
        """Rows of ``sel`` that are not invalid and have a spec of ``kind``."""
        return sum(1 for i in sel if self.records[i].status != INVALID
                   and any(s.kind == kind for s in self.records[i].specs))


def _keep(source: RowSource, sel: Any, kind: str, key: str, values: Any) -> Any:
    if kind == "ids":
        return source.keep_ids(sel, values)
    if kind == "class":
        return source.keep_class(sel, key, values)
    return source.keep_tags(sel, key, values)


def partial_ratio(needle: str, hay: str) -> float:
    """Best difflib similarity (0-100) of the shorter string against any same-length window of the longer."""
    a, b = needle.lower().strip(), hay.lower().strip()
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(a)  # difflib caches details about seq2
    best = 0.0
    n = len(a)
    for start in range(len(b) - n + 1):
        matcher.set_seq1(b[start : start + n])
        if matcher.real_quick_ratio() * 100 <= best or matcher.quick_ratio() * 100 <= best:
            continue
        best = max(best, matcher.ratio() * 100)
        if best >= 100.0:
            break
    return best


def entry_name(entry: Entry | Mapping[str, Any]) -> str:
    return Entry.coerce(entry).semantic.name


def _texts(entry: Entry, fields: tuple[str, ...]) -> list[str]:
    semantic = entry.semantic
    texts = (entry.alias if f == "alias" else semantic.name if f == "name" else semantic.description for f in fields)
    return [t for t in texts if t]


def _fuzzy_texts(texts: Iterable[str], needle: str, memo: dict[str, float] | None = None) -> float:
    """The best partial ratio of ``texts`` when it reaches the threshold, else 0. ``memo`` (text ->
    score) serves docks where many learnwares share a name or a description."""
    best = 0.0
    for text in texts:
        score = memo.get(text) if memo is not None else None
        if score is None:
            score = partial_ratio(needle, text) if _may_reach(needle, text) else 0.0
            if memo is not None:
                memo[text] = score
        best = max(best, score)
    return best if best >= FUZZY_THRESHOLD else 0.0


def _may_reach(needle: str, text: str) -> bool:
    """A cheap bound: a window can share no more characters with the shorter string than the two
    strings share in all, so too few shared characters mean a ratio under the threshold."""
    a, b = needle.lower().strip(), text.lower().strip()
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    if not shorter:
        return False
    shared = sum((Counter(shorter) & Counter(longer)).values())
    return shared * 100.0 >= FUZZY_THRESHOLD * len(shorter)


def _id_ok(entry: Entry, refs: Iterable[str]) -> bool:
    eid, alias = entry.id.lower(), (entry.alias or "").lower()
    return any((alias and r == alias) or eid.startswith(r) for r in refs)


def _text_stage(source: RowSource, sel: Any, needle: str, fields: tuple[str, ...]) -> Any:
    """Substring stage first; the fuzzy stage (best first) only when it finds nothing."""
    exact = source.keep_substring(sel, needle, fields)
    if source.size(exact):
        return exact
    memo: dict[str, float] = {}
    scores = [_fuzzy_texts(texts, needle, memo) for texts in source.texts(sel, fields)]
    return source.take(sel, sorted((j for j, s in enumerate(scores) if s > 0), key=lambda j: -scores[j]))


def filter_rows(source: RowSource, query: SemanticQuery, include_unchecked: bool = False
                ) -> tuple[Any, list[tuple[str, int]]]:
    """Search's filter: the status rule, then :meth:`SemanticQuery.apply`'s rules one by one.
    Returns the surviving selection and (step, count after it) for explanations. A learnware with
    no status counts as usable."""
    allowed = {USABLE, SEMANTIC_ONLY} if include_unchecked else {USABLE}
    counts: Counter[str] = Counter()
    for status, n in source.status_counts().items():
        counts[status or USABLE] += n
    sel = source.keep_status(source.start(), allowed | {""})
    trace: list[tuple[str, int]] = [("in the dock", sum(counts.values()))]
    unchecked, invalid = counts[SEMANTIC_ONLY], counts[INVALID]
    label = "status usable or semantic-only" if include_unchecked else "status usable"
    notes = [f"{invalid} invalid"] if invalid else []
    if unchecked and not include_unchecked:
        notes.append(f"{unchecked} semantic-only: add --include-unchecked to see them")
    trace.append((label + (f" ({'; '.join(notes)})" if notes else ""), source.size(sel)))
    return query.apply(source, sel, trace), trace


def filter_entries(entries: Sequence[T], query: SemanticQuery, include_unchecked: bool = False
                   ) -> tuple[list[T], list[tuple[str, int]]]:
    """:func:`filter_rows` over a list of entries (records or index documents, returned as given)."""
    kept, trace = filter_rows(RecordSource([Entry.coerce(e) for e in entries]), query, include_unchecked)
    return [entries[i] for i in kept], trace
