"""The requirements ``lwdock pack`` writes when the developer names none: pins of what the model needs here.

- a scikit-learn model: this scikit-learn;
- a torch network: this torch (its public version: ``2.13.0``, not the local ``2.13.0+cpu``, so
  any build of that release satisfies it);
- a wrapper module: the installed distributions of the packages its ``.py`` files import (read
  from their syntax trees, never run), leaving out the standard library and lwdock's shim.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

from . import models

NOT_PINNED = {"learnware", "lwdock"}  # the worker provides the reference's `learnware` shim


def pin(distribution: str) -> str:
    """``name==version`` of an installed distribution (its public version), or the bare name."""
    try:
        return f"{distribution}=={version(distribution).split('+', 1)[0]}"
    except PackageNotFoundError:
        return distribution


def default_requirements(kind: str = models.SKLEARN, module: Path | None = None,
                         include: Iterable[str | Path] = ()) -> list[str]:
    if kind == models.SKLEARN:
        return [pin("scikit-learn")]
    if kind in (models.TORCHSCRIPT, models.TORCH_STATE):
        return [pin("torch")] + [r for r in _imported(module, include) if not r.startswith("torch==")]
    return _imported(module, include)


def _imported(module: Path | None, include: Iterable[str | Path]) -> list[str]:
    files = [module] if module is not None else []
    for item in include:
        p = Path(item)
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.suffix == ".py" else []
    names: set[str] = set()
    for f in files:
        try:
            names |= models.imported_packages(f)
        except (SyntaxError, ValueError, OSError):
            continue  # the module itself was parsed already; a broken helper fails the checks, with its reason
    local = {f.stem for f in files} | {Path(i).name for i in include}
    dists = packages_distributions()
    out = set()
    for name in names - set(sys.stdlib_module_names) - NOT_PINNED - local:
        for dist in dists.get(name, [])[:1]:
            out.add(pin(dist))
    return sorted(out)
