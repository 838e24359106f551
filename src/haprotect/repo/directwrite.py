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

from haprotect.repo.config import MiB

BLOCK = 4096
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


class DirectWriter(Generic[F]):
    """Writes chunks and holes of ``O_DIRECT`` files; ``open_fd`` opens a file not open yet."""

    def __init__(self, open_fd: Callable[[F], int]) -> None:
        self._open_fd = open_fd
        self._local = threading.local()

    def write(self, file: F, data: bytes | memoryview, at: int) -> None:
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
        buf = self.buffer(hi - lo)
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
            buf = self.buffer(BLOCK)
            buf[:] = partial.data
            self._pwrite(file, buf, block)

    def buffer(self, size: int) -> memoryview:
        """This thread's page-aligned buffer, ``size`` bytes of it."""
        local = self._local
        buf: mmap.mmap | None = getattr(local, "buf", None)
        if buf is None or len(buf) < size:
            if buf is not None:
                buf.close()
            buf = local.buf = mmap.mmap(-1, max(size, 4 * MiB))
        return memoryview(buf)[:size]

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
        buf = self.buffer(BLOCK)
        buf[:] = partial.data
        self._pwrite(file, buf, block)

    def _pwrite(self, file: F, view: memoryview, at: int) -> None:
        try:
            write_all(file.fd, view, at)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # the file system takes O_DIRECT but not these writes: go through the cache
            flags = fcntl.fcntl(file.fd, fcntl.F_GETFL)
            fcntl.fcntl(file.fd, fcntl.F_SETFL, flags & ~_DIRECT)
            write_all(file.fd, view, at)


def write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset``."""
    written = os.pwrite(fd, data, offset)
    if written == len(data):
        return
    view = memoryview(data)[written:]
    offset += written
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
