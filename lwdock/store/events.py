"""What the Dock tells the rest of lwdock when its index changes.

The store knows nothing about search (or any other consumer of its changes): it emits a
:class:`DockChanged` to every listener registered with :meth:`Dock.subscribe`, and ``doctor``
checks and rebuilds every :class:`DerivedData` registered with :meth:`Dock.attach`. Whoever
opens a dock for the CLI or the Python API wires the consumers in (:mod:`lwdock.api`).

Listeners run inside the dock lock, after the index session has recorded the change and
before it is written: the learnware is committed only when every listener returns. A listener
that raises therefore aborts the change (what was already written beside the index is a
leftover that ``doctor`` removes), so a listener must raise only when the change must not
happen; derived data that can be rebuilt later should log and return instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..records import Entry


@dataclass(frozen=True)
class DockChanged:
    """One committed change of the index.

    ``added``: learnwares that are new, or whose entry changed (status, alias); ``removed``: ids
    that left the index. A changed learnware appears in both (removed, then added again).
    ``generation``: the index generation this change creates.
    """

    added: tuple[Entry, ...] = ()
    removed: tuple[str, ...] = ()
    generation: int = 0


Listener = Callable[[DockChanged], None]


@dataclass(frozen=True)
class DerivedData:
    """Data derived from the index (for example the search cache) that the Dock keeps in step
    through ``on_change`` and that ``doctor`` checks (``is_stale``) and rebuilds (``rebuild``)."""

    name: str
    on_change: Listener
    is_stale: Callable[[], bool]
    rebuild: Callable[[], object]
