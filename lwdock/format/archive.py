"""Safe reading and extraction of learnware zips.

A learnware zip is untrusted input. Before anything is written we check every
member: no absolute paths, no ``..``, no symlinks or special files, no
duplicate names, a bounded member count and a bounded uncompressed size
(counted while extracting too, since a zip can lie about its sizes). A zip
whose content sits under one top-level folder is accepted and flattened, as
the reference system does.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import load_settings
from ..errors import NotFoundError, PackageError

YAML_NAME = "learnware.yaml"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    max_members: int = 2000
    max_unpacked_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        s = load_settings()
        return cls(max_members=s.max_members, max_unpacked_bytes=s.max_unpacked_bytes)


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    rel: str  # path relative to the package root (top folder stripped)


def _check_name(name: str) -> PurePosixPath:
    if not name or "\x00" in name:
        raise PackageError(f"zip member has an empty or NUL-containing name: {name!r}")
    if "\\" in name:
        raise PackageError(f"zip member {name!r} uses backslashes; only '/' separators are allowed")
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise PackageError(f"zip member {name!r} has an absolute path")
    if any(part == ".." for part in p.parts):
        raise PackageError(f"zip member {name!r} escapes the package with '..'")
    return p


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _is_special(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    if info.create_system != 3 or stat.S_IFMT(mode) == 0:
        return False  # no file type recorded: a plain file
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def open_zip(path: Path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise PackageError(f"{path} is a directory, not a learnware zip", hint="build a zip with `lwdock pack`")
    if path.stat().st_size == 0:
        raise PackageError(f"{path} is empty, not a learnware zip")
    if not zipfile.is_zipfile(path):
        raise PackageError(f"{path} is not a zip file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageError(f"{path} is not a readable zip file ({exc})") from None


def list_members(zf: zipfile.ZipFile, limits: Limits) -> list[Member]:
    """Validate every member and return the files, relative to the package root."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise PackageError(f"zip has {len(infos)} members, more than the limit of {limits.max_members}")
    seen: set[str] = set()
    files: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in infos:
        p = _check_name(info.filename)
        if _is_symlink(info):
            raise PackageError(f"zip member {info.filename!r} is a symlink; symlinks are not allowed")
        if _is_special(info):
            raise PackageError(f"zip member {info.filename!r} is not a regular file or directory")
        key = str(p)
        if key in seen:
            raise PackageError(f"zip has duplicate member {info.filename!r}")
        seen.add(key)
        if info.is_dir():
            continue
        total += info.file_size
        if total > limits.max_unpacked_bytes:
            raise PackageError(
                f"zip unpacks to more than {limits.max_unpacked_bytes} bytes (the limit)",
                hint="raise LWDOCK_MAX_UNPACKED_MB if this learnware is really that large",
            )
        files.append((info, p))
    if not files:
        raise PackageError("zip holds no files")
    prefix = _single_top_folder([p for _, p in files])
    out = []
    for info, p in files:
        rel = PurePosixPath(*p.parts[1:]) if prefix else p
        out.append(Member(info=info, rel=str(rel)))
    if YAML_NAME not in {m.rel for m in out}:
        raise PackageError(f"zip has no {YAML_NAME} at its top level")
    return out


def _single_top_folder(paths: list[PurePosixPath]) -> bool:
    """True when every file sits under one common top folder and no yaml is at the root."""
    if any(len(p.parts) == 1 for p in paths):
        return False
    return len({p.parts[0] for p in paths}) == 1


def extract(zip_path: Path, dest: Path, limits: Limits | None = None) -> list[str]:
    """Extract a validated zip into ``dest`` (which must not exist). Returns relative file names."""
    limits = limits or Limits.from_settings()
    dest = Path(dest)
    with open_zip(zip_path) as zf:
        members = list_members(zf, limits)
        dest.mkdir(parents=True)
        root = dest.resolve()
        written = 0
        for m in members:
            target = (root / m.rel).resolve()
            if not target.is_relative_to(root):  # belt and braces after _check_name
                raise PackageError(f"zip member {m.info.filename!r} escapes the package")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(m.info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limits.max_unpacked_bytes:
                            raise PackageError(
                                f"zip unpacks to more than {limits.max_unpacked_bytes} bytes (the limit)"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
                raise PackageError(f"cannot read zip member {m.info.filename!r}: {exc}") from None
            except RuntimeError as exc:  # encrypted members
                raise PackageError(f"cannot read zip member {m.info.filename!r}: {exc}") from None
        return [m.rel for m in members]
