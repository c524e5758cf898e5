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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
        record = Entry.coerce(entry)
        if not all(keep(record) for _, keep in self._key_rules()):
            return False
        test = _fuzzy_score if fuzzy else _contains
        return all(bool(test(record, text, fields)) for _, text, fields in self._text_rules())

    def select(self, entries: Sequence[T]) -> list[T]:
        """The entries that match, with the fuzzy fallback of each text filter (see the module doc)."""
        records = [Entry.coerce(e) for e in entries]
        return [entries[i] for i in self._apply(records, range(len(records)))]

    def _apply(self, records: list[Entry], kept: Iterable[int], trace: list[tuple[str, int]] | None = None
               ) -> list[int]:
        """The positions in ``kept`` whose records pass every rule, in rule order. (Positions, not
        pairs: on a dock of 100,000 learnwares, 100,000 tuples would wake the cyclic GC.)"""
        kept = list(kept)
        for label, keep in self._key_rules():
            kept = [i for i in kept if keep(records[i])]
            if trace is not None:
                trace.append((label, len(kept)))
        for label, text, fields in self._text_rules():
            kept = _text_stage(records, kept, text, fields)
            if trace is not None:
                trace.append((label, len(kept)))
        return kept

    # -- the rules, in the order they are applied (and explained) ------------------------------
    def _key_rules(self) -> list[tuple[str, Callable[[Entry], bool]]]:
        rules: list[tuple[str, Callable[[Entry], bool]]] = []
        if self.ids:
            refs = [r.lower() for r in self.ids if r]
            rules.append((f"id/alias {','.join(self.ids)}", lambda e: _id_ok(e, refs)))
        for attr, key in CLASS_KEYS.items():
            wanted = {w.lower() for w in getattr(self, attr) if w}
            if wanted:
                rules.append((f"{key} in {{{', '.join(getattr(self, attr))}}}",
                              lambda e, key=key, wanted=wanted: (e.semantic.value(key) or "").lower() in wanted))
        for attr, key in TAG_KEYS.items():
            wanted = {w.lower() for w in getattr(self, attr) if w}
            if wanted:
                rules.append((f"{key} among {{{', '.join(getattr(self, attr))}}}",
                              lambda e, key=key, wanted=wanted: bool({v.lower() for v in e.semantic.value(key)} & wanted)))
        return rules

    def _text_rules(self) -> list[tuple[str, str, tuple[str, ...]]]:
        rules = []
        if self.name and self.name.strip():
            rules.append((f"name like {self.name!r}", self.name.lower().strip(), NAME_FIELDS))
        if self.description_like and self.description_like.strip():
            rules.append((f"description like {self.description_like!r}", self.description_like.lower().strip(),
                          DESCRIPTION_FIELDS))
        return rules


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


def _contains(entry: Entry, needle: str, fields: tuple[str, ...]) -> bool:
    return any(needle in t.lower() for t in _texts(entry, fields))


def _fuzzy_score(entry: Entry, needle: str, fields: tuple[str, ...], memo: dict[str, float] | None = None) -> float:
    """The best partial ratio when it reaches the threshold, else 0. ``memo`` (text -> score)
    serves docks where many learnwares share a name or a description."""
    best = 0.0
    for text in _texts(entry, fields):
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


def _text_stage(records: list[Entry], kept: list[int], needle: str, fields: tuple[str, ...]) -> list[int]:
    """Substring stage first; the fuzzy stage (best first) only when it finds nothing."""
    exact = [i for i in kept if _contains(records[i], needle, fields)]
    if exact:
        return exact
    memo: dict[str, float] = {}
    scores = {i: _fuzzy_score(records[i], needle, fields, memo) for i in kept}
    return sorted((i for i in kept if scores[i] > 0), key=lambda i: -scores[i])  # stable: ties keep order


def filter_entries(entries: Sequence[T], query: SemanticQuery, include_unchecked: bool = False
                   ) -> tuple[list[T], list[tuple[str, int]]]:
    """Search's filter: the status rule, then :meth:`SemanticQuery.select`'s rules one by one.
    Returns the survivors and (step, count after it) for explanations."""
    allowed = {USABLE, SEMANTIC_ONLY} if include_unchecked else {USABLE}
    records = [Entry.coerce(e) for e in entries]
    statuses = [r.status or USABLE for r in records]
    kept = [i for i, status in enumerate(statuses) if status in allowed]
    counts = Counter(statuses)
    trace: list[tuple[str, int]] = [("in the dock", len(entries))]
    unchecked, invalid = counts[SEMANTIC_ONLY], counts[INVALID]
    label = "status usable or semantic-only" if include_unchecked else "status usable"
    notes = [f"{invalid} invalid"] if invalid else []
    if unchecked and not include_unchecked:
        notes.append(f"{unchecked} semantic-only: add --include-unchecked to see them")
    trace.append((label + (f" ({'; '.join(notes)})" if notes else ""), len(kept)))
    kept = query._apply(records, kept, trace)
    return [entries[i] for i in kept], trace
