"""Semantic search over index entries: status, id/alias, Class/Tag rules, name and description.

Rules (the reference's, with the differences noted):

* Status: ``invalid`` never appears; ``semantic-only`` only with ``include_unchecked``.
* ``ids``: a learnware matches when its alias equals the value or its id starts with it
  (case-insensitive); several values are OR-ed.
* Class keys (Data, Task, Library, License): the learnware's first value must be one of the
  user's values. Tag keys (Scenario): the two value sets must intersect. A learnware with no
  value for a key the user filters on does not match. Comparison ignores case (the reference's
  is case-sensitive).
* ``name``: case-insensitive substring of the learnware's Name *or* Description. Only when no
  learnware matches that way, a fuzzy stage keeps learnwares whose best
  :func:`partial_ratio` against Name or Description is at least :data:`FUZZY_THRESHOLD`
  (75 of 100, the reference's value), best first.
* ``description_like``: the same substring-then-fuzzy rule against the Description alone (the
  reference ignores the user's Description; we offer it as a separate filter).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

FUZZY_THRESHOLD = 75.0
CLASS_KEYS = {"data_type": "Data", "task": "Task", "library": "Library", "license": "License"}
TAG_KEYS = {"scenario": "Scenario"}


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

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("name", "description_like", "data_type", "task", "library", "scenario", "license", "ids"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


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


def _values(semantic: dict[str, Any], key: str) -> list[str]:
    item = semantic.get(key) if isinstance(semantic, dict) else None
    if not isinstance(item, dict):
        return []
    vals = item.get("Values")
    if isinstance(vals, str):
        return [vals] if vals else []
    if isinstance(vals, (list, tuple)):
        return [str(v) for v in vals if str(v)]
    return []


def _string(semantic: dict[str, Any], key: str) -> str:
    vals = _values(semantic, key)
    return vals[0] if vals else ""


def entry_name(entry: dict[str, Any]) -> str:
    return _string(entry.get("semantic") or {}, "Name")


def _class_ok(semantic: dict[str, Any], key: str, wanted: Sequence[str]) -> bool:
    have = _values(semantic, key)
    return bool(have) and have[0].lower() in {w.lower() for w in wanted}


def _tag_ok(semantic: dict[str, Any], key: str, wanted: Sequence[str]) -> bool:
    have = {v.lower() for v in _values(semantic, key)}
    return bool(have & {w.lower() for w in wanted})


def _id_ok(entry: dict[str, Any], refs: Iterable[str]) -> bool:
    eid = str(entry.get("id", "")).lower()
    alias = (entry.get("alias") or "").lower()
    return any((alias and r.lower() == alias) or (r and eid.startswith(r.lower())) for r in refs)


def _text_match(entries: list[dict[str, Any]], text: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Substring stage first; the fuzzy stage only when it finds nothing."""
    needle = text.lower().strip()
    if not needle:
        return entries
    exact = [e for e in entries if any(needle in _string(e.get("semantic") or {}, k).lower() for k in keys)]
    if exact:
        return exact
    scored = []
    for e in entries:
        sem = e.get("semantic") or {}
        score = max(partial_ratio(needle, _string(sem, k)) for k in keys)
        if score >= FUZZY_THRESHOLD:
            scored.append((score, e))
    scored.sort(key=lambda t: -t[0])  # stable: ties keep index order
    return [e for _, e in scored]


def filter_entries(
    entries: list[dict[str, Any]], query: SemanticQuery, include_unchecked: bool = False
) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """Apply the rules in order; returns the survivors and (step, count after it) for explanations."""
    trace: list[tuple[str, int]] = [("in the dock", len(entries))]
    allowed = {"usable", "semantic-only"} if include_unchecked else {"usable"}
    kept = [e for e in entries if e.get("status", "usable") in allowed]
    unchecked = sum(1 for e in entries if e.get("status") == "semantic-only")
    invalid = sum(1 for e in entries if e.get("status") == "invalid")
    label = "status usable or semantic-only" if include_unchecked else "status usable"
    notes = [f"{invalid} invalid"] if invalid else []
    if unchecked and not include_unchecked:
        notes.append(f"{unchecked} semantic-only: add --include-unchecked to see them")
    trace.append((label + (f" ({'; '.join(notes)})" if notes else ""), len(kept)))
    if query.ids:
        kept = [e for e in kept if _id_ok(e, query.ids)]
        trace.append((f"id/alias {','.join(query.ids)}", len(kept)))
    for attr, key in CLASS_KEYS.items():
        wanted = getattr(query, attr)
        if wanted:
            kept = [e for e in kept if _class_ok(e.get("semantic") or {}, key, wanted)]
            trace.append((f"{key} in {{{', '.join(wanted)}}}", len(kept)))
    for attr, key in TAG_KEYS.items():
        wanted = getattr(query, attr)
        if wanted:
            kept = [e for e in kept if _tag_ok(e.get("semantic") or {}, key, wanted)]
            trace.append((f"{key} among {{{', '.join(wanted)}}}", len(kept)))
    if query.name:
        kept = _text_match(kept, query.name, ("Name", "Description"))
        trace.append((f"name like {query.name!r}", len(kept)))
    if query.description_like:
        kept = _text_match(kept, query.description_like, ("Description",))
        trace.append((f"description like {query.description_like!r}", len(kept)))
    return kept, trace
