"""``lwdock pack DIR``: a learnware folder in the documented layout, zipped as lwdock writes zips.

The folder holds what a learnware zip holds (docs/packaging.md): ``learnware.yaml``, the model
module and its files, the statistical spec file(s), ``requirements.txt`` or ``environment.yaml``,
and optionally ``semantic_specification.json``. The folder is parsed as a package first (the same
parser the dock uses on a zip), so a broken layout is refused here and not at submit time.
Semantic flags given with the folder override its ``semantic_specification.json`` (or make one).

Files keep their paths relative to the folder (the reference client flattens sub-folders, which
breaks packages with sub-packages); ``__pycache__``, ``.git`` and other hidden entries stay out;
symbolic links are refused. Zips are written with fixed timestamps: the same folder gives the same
bytes, so the same learnware id.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, PackageError, UsageError
from ..records import Semantic
from . import labels as lab
from . import semantic as sem
from ..spec.data import named_columns
from .archive import YAML_NAME, Limits
from .ids import sha256_file
from .package import SEMANTIC_FILE, parse_package
from .pack import PackResult, write_zip

SKIPPED_DIRS = ("__pycache__",)


def folder_files(folder: Path, limits: Limits | None = None) -> dict[str, Path]:
    """The files of a learnware folder by their zip names, within ``limits``."""
    limits = limits or Limits.from_settings()
    found: dict[str, Path] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in rel.parts):
            continue
        if path.is_symlink():
            raise UsageError(f"{path} is a symbolic link; a learnware folder holds plain files only")
        if not path.is_file():
            continue
        total += path.stat().st_size
        found[rel.as_posix()] = path
        if len(found) > limits.max_members or total > limits.max_unpacked_bytes:
            raise PackageError(f"{folder} holds more than {limits.max_members} files or "
                               f"{limits.max_unpacked_bytes} bytes; a learnware zip may not")
    return found


def pack_folder(folder: str | Path, out_zip: str | Path, *, semantic_file: str | Path | None = None,
                semantic_flags: dict[str, Any] | None = None) -> PackResult:
    """Zip the learnware folder ``folder`` into ``out_zip``. ``semantic_file`` replaces the folder's
    semantic spec and ``semantic_flags`` (keyword arguments of :func:`semantic.from_flags`) override
    its keys; either makes the zip's ``semantic_specification.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"no such folder: {folder}")
    if not (folder / YAML_NAME).is_file():
        raise PackageError(f"{folder} has no {YAML_NAME}",
                           hint="a learnware folder holds learnware.yaml, the model module and the spec file "
                                "(docs/packaging.md); to build one from a model, use --model and --data")
    out_zip = Path(out_zip)
    if out_zip.resolve().is_relative_to(folder.resolve()):
        raise UsageError(f"write the zip outside the folder it packs ({out_zip})")
    package = parse_package(folder)
    files = {name: path.read_bytes() for name, path in folder_files(folder).items()}
    own = sem.load(semantic_file) if semantic_file is not None else package.semantic
    final = _semantic(own, semantic_flags)
    if final is not None and (semantic_file is not None or semantic_flags):
        files[SEMANTIC_FILE] = json.dumps(final.to_dict(), indent=2, sort_keys=True).encode()
    write_zip(out_zip, files)
    if final is None:
        return PackResult(path=str(out_zip), id=sha256_file(out_zip), dim=0, task="", output_dim=0, data_type="",
                          model_kind="folder")
    return PackResult(path=str(out_zip), id=sha256_file(out_zip), dim=int(final.input_dim or 0), task=final.task or "",
                      output_dim=int(final.output_dim or 0), data_type=str(final.value("Data") or ""),
                      model_kind="folder", columns=named_columns(final.input_dim, final.input_names),
                      classes=lab.declared_classes(final))


def _semantic(own: dict[str, Any] | None, flags: dict[str, Any] | None) -> Semantic | None:
    """The folder's semantic spec with the flags over it, validated; None when there is neither."""
    if not own and not flags:
        return None
    return Semantic.from_dict(sem.validate(sem.from_flags(base=own, **(flags or {}))))


def is_learnware_folder(path: str | os.PathLike[str]) -> bool:
    """A folder that holds a learnware (its ``learnware.yaml``), as opposed to a folder of zips."""
    return (Path(path) / YAML_NAME).is_file()


@contextmanager
def as_zip(path: str | Path) -> Iterator[Path]:
    """``path`` itself for a zip; for a learnware folder, a zip of it (``lwdock submit DIR``) that
    lives as long as the ``with`` block. The zip is named after the folder, so messages name it."""
    path = Path(path)
    if not path.is_dir():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="lwdock-folder-") as tmp:
        out = Path(tmp) / f"{path.resolve().name or 'learnware'}.zip"
        pack_folder(path, out)
        yield out
