"""Rows of a segment's ``.npy`` files read with ``pread`` into bounded buffers, not mapped.

Pages of a memory map that a search touches stay in the process's resident set until the
map goes; at 1,000,000 table learnwares one scan of the pre-filter's sketches (1 GB) or of
the points (12.8 GB) would make a cold ``lwdock search`` that big. Reading the same bytes
with ``preadv`` into a buffer the size of one block keeps the process's memory at one block
whatever the store's size; the bytes still come from the page cache when it holds them.

A :class:`NpyFile` keeps its file open from the moment the store opens the group (under
the dock lock, as the memory maps are), so a later compaction that deletes the file cannot
take the rows from under a search.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK_BYTES = 16 << 20  # one block of rows: 16 MiB
# segments of more learnwares than this are searched through these reads, never mapped whole
MAPPED_ROWS = 20_000


@dataclass
class NpyFile:
    """A 2-D (or 1-D) C-ordered ``.npy`` file, read by rows."""

    fd: int
    offset: int  # where the data starts
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> NpyFile:
        fd = os.open(Path(path), os.O_RDONLY)
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # the header, parsed by numpy
            shape, dtype, offset = mapped.shape, mapped.dtype, int(getattr(mapped, "offset", -1))
            ok = isinstance(mapped, np.memmap) and mapped.flags.c_contiguous and not dtype.hasobject and offset >= 0
            del mapped
        except BaseException:
            os.close(fd)
            raise
        if not ok:
            os.close(fd)
            raise ValueError(f"{path}: not a C-ordered numeric array")
        out = cls(fd, offset, tuple(shape), dtype)
        weakref.finalize(out, os.close, fd)
        return out

    @property
    def rows(self) -> int:
        return int(self.shape[0])

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` (into ``out``'s first rows when given)."""
        n = stop - start
        if out is None:
            out = np.empty((n, *self.shape[1:]), dtype=self.dtype)
        view = out[:n]
        if n:
            _read_into(self.fd, view, self.offset + start * self.row_bytes)
        return view

    def gather(self, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Runs of rows ``starts[i] : starts[i] + lengths[i]``, one after another (adjacent runs
        are read in one call)."""
        starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        total = int(lengths.sum())
        if out is None:
            out = np.empty((total, *self.shape[1:]), dtype=self.dtype)
        view = out[:total]
        if not total:
            return view
        ends = starts + lengths
        # merge runs that continue one another into one read
        breaks = np.nonzero(starts[1:] != ends[:-1])[0] + 1
        first = np.concatenate([[0], breaks])
        last = np.concatenate([breaks, [starts.size]]) - 1
        pos = np.concatenate([[0], np.cumsum(lengths)])
        # byte ranges computed at once: a search gathers thousands of runs, one pread each
        rb = self.row_bytes
        into = memoryview(view.reshape(-1).view(np.uint8))
        for lo, hi, at in zip((pos[first] * rb).tolist(), (pos[last + 1] * rb).tolist(),
                              (self.offset + starts[first] * rb).tolist()):
            _read_exact(self.fd, into[lo:hi], at)
        return view

    def blocks(self, start: int = 0, stop: int | None = None, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, block)`` over rows ``start:stop``, one reused buffer of ``rows`` rows
        (default: :data:`BLOCK_BYTES`); a block is valid until the next one is read."""
        stop = self.rows if stop is None else stop
        rows = rows or max(1, BLOCK_BYTES // max(1, self.row_bytes))
        buf = np.empty((min(rows, max(stop - start, 0)), *self.shape[1:]), dtype=self.dtype)
        for s in range(start, stop, rows):
            e = min(stop, s + rows)
            yield s, self.read(s, e, buf)


def _read_into(fd: int, arr: np.ndarray, offset: int) -> None:
    _read_exact(fd, memoryview(arr.reshape(-1).view(np.uint8)), offset)


def _read_exact(fd: int, mv: memoryview, offset: int) -> None:
    done = 0
    while done < mv.nbytes:
        got = os.preadv(fd, [mv[done:]], offset + done)
        if got <= 0:
            raise OSError(f"short read from a search store file at byte {offset + done}")
        done += got
