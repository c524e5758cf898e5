"""Compatibility keys: which learnwares a user's specification can be compared with.

A :class:`Profile` names a spec's *feature space*; the kernel is the dock's choice for that
space (:mod:`lwdock.search.kernel`), never the spec's:

=========  ================================  =======================================================
type       space (``key``)                   search kernel (chosen by the dock, per space)
=========  ================================  =======================================================
table      ``table/<d>``                     RBF on per-column scaled points, median-heuristic gamma
text       ``text/<embedder>/<d>``           the same, on the embeddings
image      ``image/<C>x32x32``               NNGP (depth 3), which has no bandwidth
=========  ================================  =======================================================

The search store keeps one group per key; only learnwares of the user's group are ranked. Any
two specs of one feature space can be ranked against each other, however they were fitted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..spec import registry

NNGP_DEPTH = 3  # the image search kernel: the reference's network depth for 32x32 images


def fmt_value(value: Any) -> str:
    """A value as it appears in keys and messages: shapes as 1x32x32, floats by repr."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(int(v)) for v in value)
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Profile:
    spec_type: registry.SpecType
    attrs: tuple[tuple[str, Any], ...]  # the feature space, e.g. (("dim", 32),)

    @property
    def kind(self) -> str:
        return self.spec_type.kind

    @property
    def kernel(self) -> str:
        """The kernel backend of the space: rbf | nngp."""
        return self.spec_type.kernel

    @property
    def key(self) -> str:
        return "/".join([self.kind, *(fmt_value(v) for _, v in self.attrs)])

    space_key = key

    @property
    def dirname(self) -> str:
        """A file-system-safe, unique folder name for the key."""
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", self.key)

    def values(self) -> dict[str, Any]:
        """Space attributes by name (explanations and describe())."""
        return dict(self.attrs)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.spec_type.name, "space": self.key, "attrs": dict(self.attrs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        spec_type = registry.by_name(data["type"])
        if spec_type is None:
            raise KeyError(f"unknown specification type {data['type']!r}")
        return cls(spec_type, tuple(data["attrs"].items()))


def profile_of(spec: Any) -> Profile:
    """The profile of a fitted spec object of any registered type."""
    spec_type = registry.by_name(getattr(spec, "type", None))
    if spec_type is None:
        raise KeyError(f"not a registered specification type: {type(spec).__name__}")
    return Profile(spec_type, tuple(spec.search_space().items()))
