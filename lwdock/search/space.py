"""Compatibility keys: which learnwares a user's specification can be compared with.

A :class:`Profile` names a spec's *feature space* and its *kernel*:

=========  ================================  ==========================
type       space (``space_key``)             kernel (``kernel_key``)
=========  ================================  ==========================
table      ``table/<d>``                     ``rbf(gamma=<g>)``
text       ``text/<embedder>/<d>``           ``rbf(gamma=<g>)``
image      ``image/<C>x32x32``               ``nngp(depth=<depth>)``
=========  ================================  ==========================

The search store keeps one group per ``key = "<space> <kernel>"``; only learnwares of the
user's group are ranked. The two halves are kept apart on purpose: the space is a fact of the
data (points in R^d, an embedder's space, image tensors), the kernel is a choice. Today every
spec brings its own kernel (:func:`profile_of`); a dock that chooses the search kernel per
feature space (issue 13) replaces :func:`group_kernel` and keeps the space keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..spec import registry


def fmt_value(value: Any) -> str:
    """A value as it appears in keys and messages: shapes as 1x32x32, floats by repr."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(int(v)) for v in value)
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Profile:
    spec_type: registry.SpecType
    attrs: tuple[tuple[str, Any], ...]  # the feature space, e.g. (("dim", 32),)
    kernel: str  # backend name: rbf | nngp
    params: tuple[tuple[str, Any], ...]  # kernel parameters, e.g. (("gamma", 0.1),)

    @property
    def kind(self) -> str:
        return self.spec_type.kind

    @property
    def space_key(self) -> str:
        return "/".join([self.kind, *(fmt_value(v) for _, v in self.attrs)])

    @property
    def kernel_key(self) -> str:
        return f"{self.kernel}(" + ",".join(f"{k}={fmt_value(v)}" for k, v in self.params) + ")"

    @property
    def key(self) -> str:
        return f"{self.space_key} {self.kernel_key}"

    @property
    def dirname(self) -> str:
        """A file-system-safe, unique folder name for the key."""
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", self.key)

    def values(self) -> dict[str, Any]:
        """Space attributes then kernel parameters, by name (explanations and describe())."""
        return {**dict(self.attrs), **dict(self.params)}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.spec_type.name, "space": self.space_key, "attrs": dict(self.attrs),
                "kernel": {"name": self.kernel, **dict(self.params)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        spec_type = registry.by_name(data["type"])
        if spec_type is None:
            raise KeyError(f"unknown specification type {data['type']!r}")
        kernel = dict(data["kernel"])
        name = kernel.pop("name")
        return cls(spec_type, tuple(data["attrs"].items()), name, tuple(kernel.items()))


def group_kernel(spec: Any) -> tuple[str, dict[str, Any]]:
    """The kernel a spec's group is searched with: today the spec's own."""
    return spec.search_kernel()


def profile_of(spec: Any) -> Profile:
    """The profile of a fitted spec object of any registered type."""
    spec_type = registry.by_name(getattr(spec, "type", None))
    if spec_type is None:
        raise KeyError(f"not a registered specification type: {type(spec).__name__}")
    name, params = group_kernel(spec)
    return Profile(spec_type, tuple(spec.search_space().items()), name, tuple(params.items()))
