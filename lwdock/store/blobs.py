"""Where a dock keeps its learnware zips and manifests: the dock directory, or object storage.

Both stores hold the same two objects per learnware, named by content::

    objects/sha256/ab/<id>.zip    the zip, immutable (its id is its SHA-256)
    objects/sha256/ab/<id>.json   its manifest (the full entry; a rebuilt index reads these)

and follow the same rules: a blob is written completely and verified against its id before it
can be seen; a manifest is written after its blob; the index entry is written last (the commit
point). Nothing is ever overwritten except a manifest (alias, recheck, remove's tombstone).

* :class:`LocalBlobs` (the default): the dock directory itself (temp file, fsync, rename).
* :class:`RemoteBlobs` (``lwdock init --blobs s3://bucket/prefix``): any fsspec URL; S3 through
  s3fs, with the endpoint and credentials from the usual AWS variables (``AWS_ENDPOINT_URL``,
  ``AWS_ACCESS_KEY_ID``, ...; botocore reads them). A put is one conditional PUT
  (``If-None-Match: *``: an existing object is never overwritten) carrying the SHA-256 for S3 to
  check, then a HEAD compares size and ETag (MD5 of a single-part object); an upload killed
  midway leaves nothing visible, or an incomplete multipart upload that ``doctor`` aborts. Each
  machine keeps a verified local copy in the dock directory (the same path as a local dock's
  blob), from which its unpacked cache is built.

fsspec and s3fs are imported only here, and only for a dock whose blobs are remote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._atomic import write_atomic
from ..errors import ConflictError, DockError
from ..format.ids import sha256_file
from .layout import Layout

PART = 8 * 2**20  # multipart part size for big blobs (S3's minimum is 5 MiB)


BLOB_MISSING = "its blob is missing"  # what verify() says when there is no blob (doctor repairs it)


@dataclass(frozen=True)
class StoredObject:
    """One object of the store, as ``doctor`` sees it."""

    lw_id: str
    kind: str  # "zip" or "json"
    size: int
    key: str


def _hashes(path: Path) -> tuple[str, str, int]:
    sha, md5, n = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            n += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), n


def _manifest_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _parse_manifest(data: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class LocalBlobs:
    """Blobs in the dock directory (the default)."""

    url = "local"
    remote = False

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def put(self, src: Path, lw_id: str, scratch: Path) -> None:
        """Store ``src`` as the blob of ``lw_id``: copied, fsynced, checked against the id, made
        read-only and renamed into place."""
        blob = self.layout.blob(lw_id)
        blob.parent.mkdir(parents=True, exist_ok=True)
        tmp = scratch / "blob.zip"
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if sha256_file(tmp) != lw_id:
            raise ConflictError(f"{src} changed while it was being submitted")
        os.chmod(tmp, 0o444)
        os.replace(tmp, blob)

    def local(self, lw_id: str) -> Path:
        """The blob as a local file (here, the blob itself)."""
        blob = self.layout.blob(lw_id)
        if not blob.is_file():
            raise DockError(f"blob for learnware {lw_id[:12]} is missing", hint="run `lwdock doctor`")
        return blob

    def has_local(self, lw_id: str) -> bool:
        return self.layout.blob(lw_id).is_file()

    def read_manifest(self, lw_id: str) -> dict[str, Any] | None:
        try:
            return _parse_manifest(self.layout.manifest(lw_id).read_bytes())
        except OSError:
            return None

    def write_manifest(self, doc: dict[str, Any]) -> None:
        path = self.layout.manifest(doc["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, _manifest_bytes(doc))

    def delete(self, lw_id: str) -> None:
        for p in (self.layout.blob(lw_id), self.layout.manifest(lw_id)):
            p.unlink(missing_ok=True)

    def objects(self) -> Iterator[StoredObject]:
        for p in self.layout.objects.glob("*/*"):
            if p.suffix in (".zip", ".json") and not p.name.startswith("."):
                yield StoredObject(p.stem, p.suffix[1:], p.stat().st_size, str(p))

    def verify(self, lw_id: str, size: int) -> str | None:
        """None when the stored blob is the learnware's zip, else what is wrong."""
        blob = self.layout.blob(lw_id)
        if not blob.is_file():
            return BLOB_MISSING
        return None if sha256_file(blob) == lw_id else "its blob does not match its hash (modified on disk)"

    def hash_of(self, lw_id: str) -> str:
        return sha256_file(self.local(lw_id))

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        return []


class RemoteBlobs:
    """Blobs on object storage (any fsspec URL; S3 through s3fs), with a verified local copy."""

    remote = True

    def __init__(self, url: str, layout: Layout) -> None:
        self.url = url.rstrip("/")
        self.layout = layout
        self._fs: Any = None
        self._root = ""

    @property
    def fs(self) -> Any:
        if self._fs is None:
            try:
                import fsspec
            except ImportError:
                raise DockError("this dock's blobs are on object storage, but fsspec is not installed",
                                hint="pip install 'lwdock[team]'") from None
            try:
                # no instance cache: the AWS variables may change between docks in one process
                self._fs, self._root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
            except ImportError as exc:
                raise DockError(f"cannot open {self.url}: {exc}", hint="pip install 'lwdock[team]'") from None
        return self._fs

    @property
    def is_s3(self) -> bool:
        protocol = self.fs.protocol
        return "s3" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))

    def key(self, lw_id: str, kind: str = "zip") -> str:
        _ = self.fs
        return f"{self._root}/objects/sha256/{lw_id[:2]}/{lw_id}.{kind}"

    def check_reachable(self) -> None:
        """DockError unless the store answers (``init`` calls this before writing anything)."""
        try:
            self.fs.ls(self._root_dir(), detail=False)
        except FileNotFoundError:
            self.fs.makedirs(self._root_dir(), exist_ok=True)
        except Exception as exc:  # noqa: BLE001 - s3fs/botocore raise many kinds; say which store failed
            raise DockError(f"cannot reach the blob store {self.url}: {exc}",
                            hint="check the URL and the AWS_* variables (AWS_ENDPOINT_URL, credentials)") from None

    def _root_dir(self) -> str:
        _ = self.fs
        return self._root

    # -- writes -------------------------------------------------------------------------------------
    def put(self, src: Path, lw_id: str, scratch: Path) -> None:
        """Upload ``src`` under its id unless it is there (then check the stored one), and keep the
        verified local copy."""
        sha, md5, size = _hashes(src)
        if sha != lw_id:
            raise ConflictError(f"{src} changed while it was being submitted")
        key = self.key(lw_id)
        try:
            if self.is_s3:
                extra = ({"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha)).decode()}
                         if size < 2 * PART else {})
                self.fs.put_file(str(src), key, mode="create", chunksize=PART, **extra)
            else:
                self._put_atomic(src, key)
        except FileExistsError:
            pass  # the same content (the key is its hash): checked below
        self._check(lw_id, size, md5)
        self._keep_local(src, lw_id, scratch)

    def _put_atomic(self, src: Path, key: str) -> None:
        if self.fs.exists(key):
            raise FileExistsError(key)
        tmp = f"{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        self.fs.makedirs(self.fs._parent(key), exist_ok=True)
        self.fs.put_file(str(src), tmp)
        self.fs.mv(tmp, key)

    def _check(self, lw_id: str, size: int, md5: str) -> None:
        key = self.key(lw_id)
        self.fs.invalidate_cache(key)
        info = self.fs.info(key)
        etag = str(info.get("ETag", "")).strip('"')
        if info["size"] != size or (len(etag) == 32 and etag != md5):  # a single-part ETag is the MD5
            raise DockError(f"the stored blob of {lw_id[:12]} differs from the zip (size or checksum)",
                            hint="run `lwdock doctor`")

    def _keep_local(self, src: Path, lw_id: str, scratch: Path) -> None:
        LocalBlobs(self.layout).put(src, lw_id, scratch)

    def read_manifest(self, lw_id: str) -> dict[str, Any] | None:
        try:
            return _parse_manifest(self.fs.cat_file(self.key(lw_id, "json")))
        except FileNotFoundError:
            return None

    def write_manifest(self, doc: dict[str, Any]) -> None:
        self.fs.pipe_file(self.key(doc["id"], "json"), _manifest_bytes(doc))

    def delete(self, lw_id: str) -> None:
        for kind in ("zip", "json"):
            try:
                self.fs.rm_file(self.key(lw_id, kind))
            except FileNotFoundError:
                pass
        self.fs.invalidate_cache()
        LocalBlobs(self.layout).delete(lw_id)

    # -- reads --------------------------------------------------------------------------------------
    def local(self, lw_id: str) -> Path:
        """The verified local copy, downloaded (and checked against the id) when missing."""
        dest = self.layout.blob(lw_id)
        if dest.is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                self.fs.get_file(self.key(lw_id), str(tmp))
            except FileNotFoundError:
                raise DockError(f"blob for learnware {lw_id[:12]} is missing from {self.url}",
                                hint="run `lwdock doctor`") from None
            if sha256_file(tmp) != lw_id:
                raise DockError(f"the stored blob of {lw_id[:12]} does not match its hash", hint="run `lwdock doctor`")
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def has_local(self, lw_id: str) -> bool:
        return self.layout.blob(lw_id).is_file()

    def objects(self) -> Iterator[StoredObject]:
        base = f"{self._root_dir()}/objects/sha256"
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for key, info in found.items():
            name = key.rsplit("/", 1)[-1]
            stem, _, ext = name.rpartition(".")
            if ext in ("zip", "json") and len(stem) == 64:
                yield StoredObject(stem, ext, int(info.get("size") or 0), key)

    def verify(self, lw_id: str, size: int) -> str | None:
        """Size against the index (a HEAD); a local copy, when there is one, by its hash."""
        try:
            info = self.fs.info(self.key(lw_id))
        except FileNotFoundError:
            return BLOB_MISSING
        if size and int(info["size"]) != size:
            return f"its blob has {info['size']} bytes, the index says {size}"
        local = self.layout.blob(lw_id)
        if local.is_file() and sha256_file(local) != lw_id:
            return "its local copy does not match its hash (modified on disk)"
        return None

    def hash_of(self, lw_id: str) -> str:
        """SHA-256 of the stored object, streamed (``migrate`` verifies every copy by this)."""
        h = hashlib.sha256()
        with self.fs.open(self.key(lw_id), "rb", block_size=4 * 2**20) as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        """Multipart uploads that never completed (S3 only): ``doctor`` aborts those of dead writers."""
        if not self.is_s3:
            return []
        bucket, _, prefix = self._root_dir().partition("/")
        out: list[dict[str, Any]] = []
        kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix + "/" if prefix else ""}
        while True:
            page = self.fs.call_s3("list_multipart_uploads", **kw)
            for u in page.get("Uploads", []):
                out.append({"key": f"{bucket}/{u['Key']}", "upload_id": u["UploadId"], "lw_id": Path(u["Key"]).stem,
                            "initiated": u.get("Initiated") or datetime.now(timezone.utc)})
            if not page.get("IsTruncated"):
                return out
            kw.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])

    def abort_upload(self, upload: dict[str, Any]) -> None:
        bucket, _, key = upload["key"].partition("/")
        self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["upload_id"])
