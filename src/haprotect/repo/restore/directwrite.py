"""Writing restored files around the page cache, in whole aligned blocks.

Large files are restored with ``O_DIRECT``: copying gigabytes into the page
cache costs more CPU than all the rest of a restore, and evicts what the
machine had cached. Direct writes must cover whole aligned blocks, so the
block-aligned middle of each chunk is written at once (through a
page-aligned buffer of the writing thread) and the pieces at its ends are
gathered per block, with the zeros of holes, until the block is whole. The
last block is written whole too: the caller truncates the file to its size
at the end. Chunks arrive from several threads in any order; the partial
blocks of a file are guarded by its lock.

A direct write waits for the disk, so each costs a round trip to it. Chunks
that follow each other in a file are therefore gathered into an extent (up
to ``EXTENT_MAX``, in a page-aligned buffer of the thread) and written with
one call: a run of a pack read for a restore usually holds several
consecutive chunks of one file.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from haprotect.repo.format.config import MiB

BLOCK = 4096
EXTENT_MAX = 8 * MiB
_DIRECT = getattr(os, "O_DIRECT", 0)


@dataclass(slots=True)
class PartialBlock:
    """One block of a file, gathered piece by piece until whole."""

    data: bytearray = field(default_factory=lambda: bytearray(BLOCK))
    gathered: int = 0


class BlockFile(Protocol):
    """What the writer needs of a file being restored."""

    fd: int
    size: int
    """The file's size once all its content is scheduled, else 0."""
    lock: threading.Lock
    partial: dict[int, PartialBlock]
    """The blocks not whole yet, by offset."""


F = TypeVar("F", bound=BlockFile)


@dataclass(slots=True)
class _Extent(Generic[F]):
    """Consecutive bytes of one file gathered in a thread's extent buffer."""

    file: F
    start: int
    length: int = 0


class DirectWriter(Generic[F]):
    """Writes chunks and holes of ``O_DIRECT`` files.

    ``open_fd`` opens a file not open yet; ``failed`` is told of a file whose
    gathered extent could not be written. ``pwrite`` writes: the system's, or
    a test's that counts the writes.
    """

    def __init__(
        self,
        open_fd: Callable[[F], int],
        failed: Callable[[F, OSError], None],
        pwrite: Callable[[int, bytes | memoryview, int], int] = os.pwrite,
    ) -> None:
        self._open_fd = open_fd
        self._failed = failed
        self._write = pwrite
        self._local = threading.local()

    def append(self, file: F, data: bytes | memoryview, at: int) -> None:
        """Add a chunk to this thread's extent; write the extent when this one does not follow.

        Call :meth:`flush_extent` when the chunks at hand are added (before
        the file is finished).
        """
        local = self._local
        extent: _Extent[F] | None = getattr(local, "extent", None)
        if extent is not None and (
            extent.file is not file
            or extent.start + extent.length != at
            or extent.start % BLOCK + extent.length + len(data) > EXTENT_MAX
        ):
            self.flush_extent()
            extent = None
        if extent is None:
            if len(data) + BLOCK > EXTENT_MAX:
                try:
                    self.write(file, data, at)
                except OSError as exc:
                    self._failed(file, exc)
                return
            extent = local.extent = _Extent(file, at)
        pos = extent.start % BLOCK + extent.length
        self._extent_buffer()[pos : pos + len(data)] = data
        extent.length += len(data)

    def flush_extent(self) -> None:
        """Write this thread's extent, if any."""
        extent: _Extent[F] | None = getattr(self._local, "extent", None)
        self._local.extent = None
        if extent is None or not extent.length:
            return
        file, at, length = extent.file, extent.start, extent.length
        shift = at % BLOCK
        # the extent's first whole block lies at a page boundary of the buffer
        view = memoryview(self._extent_buffer())[shift : shift + length]
        try:
            self._write_at(file, view, at, aligned=True)
        except OSError as exc:
            self._failed(file, exc)

    def discard_extent(self) -> None:
        """Drop this thread's extent unwritten (its files failed)."""
        self._local.extent = None

    def write(self, file: F, data: bytes | memoryview, at: int) -> None:
        """Write one chunk: its whole blocks at once, its ends gathered."""
        self._write_at(file, data, at, aligned=False)

    def _write_at(self, file: F, data: bytes | memoryview, at: int, *, aligned: bool) -> None:
        """Write ``data`` at ``at``; ``aligned``: its whole blocks lie at page boundaries."""
        end = at + len(data)
        lo = -(-at // BLOCK) * BLOCK
        hi = end // BLOCK * BLOCK
        if lo > hi:
            self._piece(file, at, data)
            return
        if lo > at:
            self._piece(file, at, data[: lo - at])
        if end > hi:
            self._piece(file, hi, data[hi - at :])
        if lo == hi:
            return
        if file.fd < 0:
            self._open_fd(file)
        if aligned:
            self._pwrite(file, memoryview(data)[lo - at : hi - at], lo)
            return
        buf = self._buffer(hi - lo)
        buf[:] = data[lo - at : hi - at]
        self._pwrite(file, buf, lo)

    def hole(self, file: F, at: int, length: int) -> None:
        """Count the zeros of a hole into the partial blocks at its ends."""
        end = at + length
        first = at // BLOCK * BLOCK
        if at > first or end - first < BLOCK:
            self._piece(file, at, None, min(end, first + BLOCK) - at)
        last = end // BLOCK * BLOCK
        if end > last >= first + BLOCK:
            self._piece(file, last, None, end - last)

    def flush(self, file: F) -> None:
        """Write the blocks still partial (the last one, when the size came late)."""
        with file.lock:
            left, file.partial = file.partial, {}
        for block, partial in sorted(left.items()):
            buf = self._buffer(BLOCK)
            buf[:] = partial.data
            self._pwrite(file, buf, block)

    def _buffer(self, size: int) -> memoryview:
        """This thread's page-aligned buffer, ``size`` bytes of it."""
        local = self._local
        buf: mmap.mmap | None = getattr(local, "buf", None)
        if buf is None or len(buf) < size:
            if buf is not None:
                buf.close()
            buf = local.buf = mmap.mmap(-1, max(size, 4 * MiB))
        return memoryview(buf)[:size]

    def _extent_buffer(self) -> mmap.mmap:
        local = self._local
        buf: mmap.mmap | None = getattr(local, "extent_buf", None)
        if buf is None:
            buf = local.extent_buf = mmap.mmap(-1, EXTENT_MAX)
        return buf

    def _piece(self, file: F, at: int, data: bytes | memoryview | None, length: int = 0) -> None:
        """Add bytes (or zeros) inside one block; write the block once it is whole."""
        block = at // BLOCK * BLOCK
        size = len(data) if data is not None else length
        # the size is known once the whole file is scheduled; until then the
        # last block waits for flush
        need = min(BLOCK, file.size - block) if file.size else BLOCK
        with file.lock:
            partial = file.partial.get(block)
            if partial is None:
                partial = file.partial[block] = PartialBlock()
            if data is not None:
                partial.data[at - block : at - block + size] = data
            partial.gathered += size
            if partial.gathered < need:
                return
            del file.partial[block]
        if file.fd < 0:
            self._open_fd(file)
        buf = self._buffer(BLOCK)
        buf[:] = partial.data
        self._pwrite(file, buf, block)

    def _pwrite(self, file: F, view: memoryview, at: int) -> None:
        try:
            write_all(file.fd, view, at, self._write)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # the file system takes O_DIRECT but not these writes: go through the cache
            flags = fcntl.fcntl(file.fd, fcntl.F_GETFL)
            fcntl.fcntl(file.fd, fcntl.F_SETFL, flags & ~_DIRECT)
            write_all(file.fd, view, at, self._write)


def write_all(
    fd: int,
    data: bytes | memoryview,
    offset: int,
    pwrite: Callable[[int, bytes | memoryview, int], int] = os.pwrite,
) -> None:
    """``pwrite`` all of ``data`` at ``offset``."""
    written = pwrite(fd, data, offset)
    if written == len(data):
        return
    view = memoryview(data)[written:]
    offset += written
    while view:
        written = pwrite(fd, view, offset)
        view = view[written:]
        offset += written
