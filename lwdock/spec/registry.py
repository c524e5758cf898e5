"""The one place that knows the specification types.

Each :class:`SpecType` ties together the names a type goes by (the ``type`` string in spec
files, legacy aliases, the ``class_name`` a ``learnware.yaml`` may give), its *kind* (``table``,
``image``, ``text``: the index's spec summaries and the search store use it), the semantic
``Data`` value it serves, its estimator class, and its search kernel backend (``rbf`` or
``nngp``, see :mod:`lwdock.search.backends`). Each class carries its file codec
(``codec``, :mod:`lwdock.spec.specfile`) and says which feature space it lives in
(``search_space()``), from which the search store builds its compatibility keys
(:mod:`lwdock.search.space`); the kernel is the dock's choice per feature space.

This module imports nothing heavy (no numpy): the store reads it to validate packages, and
``lwdock --help`` must stay cheap. Classes are imported on first use (:meth:`SpecType.spec_class`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpecType:
    name: str  # the ``type`` written in spec files
    kind: str  # table | image | text
    data_type: str  # the semantic specification's Data value it serves
    kernel: str  # search kernel backend: rbf | nngp
    class_path: str  # "module:Class" inside lwdock.spec, imported on first use
    aliases: tuple[str, ...] = ()  # other ``type`` values read as this type (the reference's legacy names)
    class_names: tuple[str, ...] = ()  # further names a learnware.yaml may give as class_name

    @property
    def names(self) -> tuple[str, ...]:
        """Every ``type`` string a spec file of this type may carry."""
        return (self.name, *self.aliases)

    def spec_class(self) -> Any:
        """The estimator class (imported here, not at module load: numpy and torch stay unloaded)."""
        module, _, cls = self.class_path.partition(":")
        return getattr(importlib.import_module(f".{module}", __package__), cls)


TABLE = SpecType("RKMETableSpecification", "table", "Table", "rbf", "rkme_table:RKMETableSpec",
                 aliases=("RKMEStatSpecification",), class_names=("RKMETableSpec",))
IMAGE = SpecType("RKMEImageSpecification", "image", "Image", "nngp", "rkme_image:RKMEImageSpec",
                 class_names=("RKMEImageSpec",))
TEXT = SpecType("RKMETextSpecification", "text", "Text", "rbf", "rkme_text:RKMETextSpec",
                class_names=("RKMETextSpec",))
TYPES: tuple[SpecType, ...] = (TABLE, IMAGE, TEXT)
KINDS: tuple[str, ...] = tuple(t.kind for t in TYPES)

# learnware.yaml class_name -> kind (the reference's names and ours)
SPEC_KINDS: dict[str, str] = {n: t.kind for t in TYPES for n in (*t.names, *t.class_names)}
# semantic Data value -> spec type name (what `lwdock pack` builds for each data type)
SPEC_CLASS: dict[str, str] = {t.data_type: t.name for t in TYPES}


def by_name(name: Any) -> SpecType | None:
    """The type a spec file's ``type`` (or a yaml ``class_name``) names, if any."""
    return next((t for t in TYPES if name in t.names or name in t.class_names), None)


def serves(type_name: Any, data_type: str) -> bool:
    """Does a spec of file type ``type_name`` describe data of the semantic ``data_type``?"""
    t = by_name(type_name)
    return t is not None and t.data_type == data_type
