"""Safe reading and extraction of learnware zips.

A learnware zip is untrusted input. Before anything is written we check every
member: no absolute paths, no ``..``, no empty names (``.``), no symlinks or
special files, no duplicate names, no member that is both a file and a folder
(``x`` and ``x/y``), bounded name lengths, a bounded member count and a
bounded uncompressed size (counted while extracting too, since a zip can lie
about its sizes). Whatever the decompressor raises on a corrupt member
becomes a PackageError. A zip whose content sits under one top-level folder is
accepted and flattened, as the reference system does.

Extraction records the SHA-256 of every member (see ``lwdock.store.verify``)
and writes files 0644 and folders 0755 whatever the umask, so the sandboxed
worker, which may run as another user, can read its copy.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import load_settings
from ..errors import NotFoundError, PackageError

YAML_NAME = "learnware.yaml"
_CHUNK = 1 << 16
MAX_NAME_BYTES = 1024  # a whole member name
MAX_PART_BYTES = 255  # one path component (NAME_MAX on Linux and macOS)
# what the zip reader and the decompressors raise on corrupt or unsupported data
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error, RuntimeError,
                ValueError, struct.error, OSError)


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
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise PackageError(f"zip member name {name[:60]!r}... is longer than {MAX_NAME_BYTES} bytes")
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise PackageError(f"zip member {name!r} has an absolute path")
    if any(part == ".." for part in p.parts):
        raise PackageError(f"zip member {name!r} escapes the package with '..'")
    if not p.parts:
        raise PackageError(f"zip member {name!r} names no file (only '.' or '/')")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in p.parts):
        raise PackageError(f"zip member {name[:60]!r} has a path component longer than {MAX_PART_BYTES} bytes")
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
    except _READ_ERRORS as exc:
        raise PackageError(f"{path} is not a readable zip file ({' '.join(str(exc).split())[:200]})") from None


def list_members(zf: zipfile.ZipFile, limits: Limits) -> list[Member]:
    """Validate every member and return the files, relative to the package root."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise PackageError(f"zip has {len(infos)} members, more than the limit of {limits.max_members}")
    seen: set[str] = set()
    dirs: set[str] = set()
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
        dirs.update(str(parent) for parent in p.parents if str(parent) != ".")
        if info.is_dir():
            continue
        total += info.file_size
        if total > limits.max_unpacked_bytes:
            raise PackageError(
                f"zip unpacks to more than {limits.max_unpacked_bytes} bytes (the limit)",
                hint="raise LWDOCK_MAX_UNPACKED_MB if this learnware is really that large",
            )
        files.append((info, p))
    both = sorted(str(p) for _, p in files if str(p) in dirs)
    if both:
        raise PackageError(f"zip member {both[0]!r} is both a file and a folder")
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


def _chunks(zf: zipfile.ZipFile, members: list[Member], limits: Limits) -> Iterator[tuple[Member, bytes]]:
    """``(member, chunk)`` for every member's content, within the byte budget; b"" ends a member."""
    budget = limits.max_unpacked_bytes
    for m in members:
        try:
            with zf.open(m.info) as src:
                while chunk := src.read(_CHUNK):
                    budget -= len(chunk)
                    if budget < 0:
                        raise PackageError(f"zip unpacks to more than {limits.max_unpacked_bytes} bytes (the limit)")
                    yield m, chunk
        except _READ_ERRORS as exc:
            raise PackageError(f"cannot read zip member {m.info.filename!r}: {' '.join(str(exc).split())[:200]}") from None
        yield m, b""


def extract(zip_path: Path, dest: Path, limits: Limits | None = None) -> dict[str, str]:
    """Extract a validated zip into ``dest`` (which must not exist).

    Returns ``{relative file name: sha256 of its content}``.
    """
    limits = limits or Limits.from_settings()
    dest = Path(dest)
    hashes: dict[str, str] = {}
    with open_zip(zip_path) as zf:
        members = list_members(zf, limits)
        dest.mkdir(parents=True)
        os.chmod(dest, 0o755)
        root = dest.resolve()
        out = None
        digest = hashlib.sha256()
        try:
            for m, chunk in _chunks(zf, members, limits):
                if out is None:
                    out = _create(root, m)
                    digest = hashlib.sha256()
                if chunk:
                    out.write(chunk)
                    digest.update(chunk)
                else:
                    out.close()
                    out = None
                    hashes[m.rel] = digest.hexdigest()
        finally:
            if out is not None:
                out.close()
    return hashes


def _create(root: Path, m: Member):  # type: ignore[no-untyped-def]
    target = (root / m.rel).resolve()
    if not target.is_relative_to(root) or target == root:  # belt and braces after _check_name
        raise PackageError(f"zip member {m.info.filename!r} escapes the package")
    for parent in reversed(target.relative_to(root).parents[:-1]):
        d = root / parent
        if not d.is_dir():
            d.mkdir(mode=0o755)
            os.chmod(d, 0o755)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    os.fchmod(fd, 0o644)
    return os.fdopen(fd, "wb")


def member_hashes(zip_path: Path, limits: Limits | None = None) -> dict[str, str]:
    """``{relative file name: sha256}`` of a zip's members, read from the zip, nothing written."""
    limits = limits or Limits.from_settings()
    hashes: dict[str, str] = {}
    with open_zip(zip_path) as zf:
        digest = hashlib.sha256()
        for m, chunk in _chunks(zf, list_members(zf, limits), limits):
            if chunk:
                digest.update(chunk)
            else:
                hashes[m.rel] = digest.hexdigest()
                digest = hashlib.sha256()
    return hashes
