"""Bounded YAML for files that come inside learnware zips (``learnware.yaml``, ``environment.yaml``).

A learnware zip is hostile input, and YAML has two ways to make a small file
expensive: aliases (``*a`` repeats a whole subtree, so a few KB can stand for
gigabytes once anything walks or serialises the result) and deep nesting (the
composer recurses once per level). This loader refuses anchors and aliases
*while composing*, before anything is built, caps the nesting depth and the
file size, and accepts nothing beyond safe YAML except the reference's
``!!python/tuple`` tag (built as a tuple; no code is imported or called).

Every failure, whatever the parser raised, becomes a one-line PackageError.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import PackageError

MAX_BYTES = 256 * 1024  # reference learnware.yaml files are a few hundred bytes
MAX_DEPTH = 64
_TUPLE_TAG = "tag:yaml.org,2002:python/tuple"


class _Refused(yaml.YAMLError):
    """A construct this loader does not accept (anchors, aliases, depth)."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without anchors or aliases, with a depth cap, plus ``!!python/tuple``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(f"aliases (*name) are not allowed (line {mark.line + 1})")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise _Refused(f"anchors (&name) are not allowed (line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep (line {event.start_mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_tuple(loader: BoundedLoader, node: yaml.SequenceNode) -> tuple:
    return tuple(loader.construct_sequence(node))


BoundedLoader.add_constructor(_TUPLE_TAG, _construct_tuple)


def load(data: bytes, name: str, *, encoding: str = "utf-8") -> Any:  # noqa: ANN401 - any YAML document
    """Parse ``data`` (the bytes of file ``name``) with :class:`BoundedLoader`."""
    if len(data) > MAX_BYTES:
        raise PackageError(f"{name} is {len(data)} bytes; the limit is {MAX_BYTES}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise PackageError(f"{name} is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - BoundedLoader is a SafeLoader
    except _Refused as exc:
        raise PackageError(f"{name}: {exc}") from None
    # the parser's own errors, and what constructors raise on hostile scalars
    # (ints over the digit limit, unhashable keys, dates out of range)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise PackageError(f"{name} is not valid safe YAML: {first}") from None
