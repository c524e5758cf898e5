"""``lwdock info``: what a dock holds and how it searches (settings, counts, kernels, disk use).

It lives with the search package because the search kernel of each feature space is the search
store's choice (:mod:`lwdock.search.kernel`); everything else it reads from the Dock.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from .cache import ensure_current
from .view import DockView, as_entry


def disk_usage(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:  # removed while we walk: a concurrent writer
                continue
            total += st.st_size
    return total


def dock_info(dock: DockView) -> dict[str, Any]:
    """Path, settings, layout version, learnwares by status / spec type / dimension, the search kernel
    of each feature space, and the bytes on disk. Brings the search store up to date first (under
    the dock's lock), so the kernels shown are the ones the next search uses."""
    with dock.lock():
        entries = [as_entry(e) for e in dock.entries()]
        store = ensure_current(dock, entries)
        kernels = [g.kernel_info() for g in (store.group(k) for k in store.keys()) if g is not None]
    by_type: Counter[str] = Counter()
    by_dim: Counter[str] = Counter()
    for e in entries:
        for s in e.specs:
            by_type[s.kind] += 1
            if s.dim is not None:
                by_dim[f"{s.kind} {s.dim}"] += 1
    settings = dict(dock.settings)
    return {
        "path": str(dock.path),
        "layout_version": settings.pop("layout_version", None),
        "settings": settings,
        "learnwares": len(entries),
        "by_status": dict(sorted(Counter(e.status for e in entries).items())),
        "by_spec_type": dict(sorted(by_type.items())),
        "by_dimension": dict(sorted(by_dim.items())),
        "search_kernels": sorted(kernels, key=lambda k: str(k["space"])),
        "disk_bytes": disk_usage(Path(dock.path)),
    }
