"""Why a search found nothing, in one sentence, for every spec type.

Semantic: the first filter that emptied the list. Statistical: walk the user's feature space
(:class:`~lwdock.search.space.Profile`) attribute by attribute over the matching learnwares of
the user's kind, and name the first attribute no learnware shares, with what the dock holds
instead and what to do (a kernel setting never makes a learnware unfindable: the dock chooses
the kernel per feature space)::

    0 of 12 table learnwares have dimension 20 (dimensions in the dock: 32 (12))
    0 of 3 text learnwares were made with embedder X (embedders in the dock: hashing-384 (3)); rebuild ...
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from ..records import Entry
from .space import Profile, fmt_value
from .view import searchable_kinds


@dataclass(frozen=True)
class _Attr:
    label: str
    plural: str
    verb: str
    hint: str = ""  # formatted with the value most learnwares use


_ATTRS = {
    "dim": _Attr("dimension", "dimensions", "have"),
    "embedder": _Attr("embedder", "embedders", "were made with",
                      "rebuild your spec with that embedder (`lwdock spec text --embedder {}`)"),
    "shape": _Attr("image shape", "image shapes", "have"),
}
_KIND_ATTRS = {("text", "dim"): _Attr("embedding dimension", "embedding dimensions", "have")}


def _attr(kind: str, name: str) -> _Attr:
    return _KIND_ATTRS.get((kind, name)) or _ATTRS.get(name) or _Attr(name, name, "have")


def semantic(trace: list[tuple[str, int]]) -> str:
    """The first semantic filter step that left nothing (``trace``: (step, count after it))."""
    if trace[0][1] == 0:
        return "the dock holds no learnwares"
    for (_, before), (label, after) in zip(trace, trace[1:]):
        if after == 0:
            return f"0 of {before} learnwares pass the filter: {label}"
    return "no learnware matches"


def _counts(values: list[Any]) -> list[tuple[str, int]]:
    return collections.Counter(values).most_common(5)


def statistical(kept: list[Entry], want: Profile, profiles: dict[str, Profile]) -> str:
    """Why none of ``kept`` (the semantic survivors) could be ranked against a user of ``want``;
    ``profiles``: id -> profile of the stored learnwares of the user's kind."""
    kind = want.kind
    of_kind = [e.id for e in kept if kind in searchable_kinds(e)]
    if not of_kind:
        article = "an" if kind[0] in "aeiou" else "a"
        return f"0 of {len(kept)} matching learnwares have {article} {kind} specification"
    pool = [profiles[i] for i in of_kind if i in profiles]
    return mismatch(pool, want) or unreadable(kind, len(of_kind))


def unreadable(kind: str, n: int) -> str:
    return f"the {kind} specifications of the {n} matching learnwares could not be read; run `lwdock doctor`"


def mismatch(pool: list[Profile], want: Profile) -> str | None:
    """The first attribute of ``want`` that none of ``pool`` shares, as a sentence (None: all agree)."""
    if not pool:
        return None
    kind, agreed = want.kind, []
    for name, value in want.values().items():
        attr, wanted = _attr(kind, name), fmt_value(value)
        same = [p for p in pool if fmt_value(p.values().get(name)) == wanted]
        if same:
            pool = same
            agreed.append(f"{attr.label} {wanted}")
            continue
        held = _counts([fmt_value(p.values().get(name)) for p in pool])
        which = f" with {' and '.join(agreed)}" if agreed else ""
        text = (f"0 of {len(pool)} {kind} learnwares{which} {attr.verb} {attr.label} {wanted} "
                f"({attr.plural} in the dock: {', '.join(f'{v} ({n})' for v, n in held)})")
        return text + (f"; {attr.hint.format(held[0][0])}" if attr.hint else "")
    return None
