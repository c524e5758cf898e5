"""Where things live inside a dock directory, and the layout version.

    <dock>/LAYOUT_VERSION          layout version (an integer), for later migrations
    <dock>/dock.json               dock settings (kernel gamma, creation time)
    <dock>/index/                  TinyDB index, sharded by id (metadata only; rebuildable)
    <dock>/objects/sha256/ab/<id>.zip   immutable learnware blobs, named by content hash
    <dock>/objects/sha256/ab/<id>.json  manifest beside each blob (used to rebuild the index)
    <dock>/unpacked/<id>/          verified copy (re-extracted from the blob when any file's hash differs)
    <dock>/unpacked/<id>.stamp.json  SHA-256 of each member, read from the blob (lwdock.store.verify)
    <dock>/envs/                   cached virtualenvs for running learnwares
    <dock>/search/                 search cache
    <dock>/summary/                the filterable fields of every learnware, in columns (lwdock.store.summary)
    <dock>/locks/dock.lock         the cross-process dock lock
    <dock>/tmp/                    scratch: atomic renames, checks, model workers (doctor cleans it)
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..config import load_settings

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def version_file(self) -> Path:
        return self.root / "LAYOUT_VERSION"

    @property
    def settings_file(self) -> Path:
        return self.root / "dock.json"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def objects(self) -> Path:
        return self.root / "objects" / "sha256"

    @property
    def unpacked(self) -> Path:
        return self.root / "unpacked"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def search(self) -> Path:
        return self.root / "search"

    @property
    def summary(self) -> Path:
        return self.root / "summary"

    @property
    def lock_file(self) -> Path:
        return self.root / "locks" / "dock.lock"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def blob(self, lw_id: str) -> Path:
        return self.objects / lw_id[:2] / f"{lw_id}.zip"

    def manifest(self, lw_id: str) -> Path:
        return self.objects / lw_id[:2] / f"{lw_id}.json"

    def unpacked_dir(self, lw_id: str) -> Path:
        return self.unpacked / lw_id

    def unpacked_stamp(self, lw_id: str) -> Path:
        """Content hashes of the learnware's members, to verify its copy before code runs from it."""
        return self.unpacked / f"{lw_id}.stamp.json"

    def make_dirs(self) -> None:
        for d in (self.index_dir, self.objects, self.unpacked, self.envs, self.search, self.lock_file.parent, self.tmp):
            d.mkdir(parents=True, exist_ok=True)


def fault_point(name: str) -> None:
    """Test hook: when LWDOCK_FAULT names this point, the process is killed right here."""
    if load_settings().fault == name:
        os.kill(os.getpid(), signal.SIGKILL)
