"""Reading files into a bounded pool of reusable buffers.

The pool is the bounded queue of the backup pipeline: the reading thread
takes a buffer, fills it, cuts it into chunks and hands it to a worker; the
worker gives it back when its chunks are stored. When every buffer is in
flight the reader waits, so memory stays at ``count * size`` whatever the
input.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Iterator

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0)


class BufferPool:
    """At most ``count`` buffers of ``size`` bytes, allocated when first needed."""

    def __init__(self, count: int, size: int) -> None:
        self.size = size
        self._free: queue.LifoQueue[bytearray] = queue.LifoQueue()
        self._unmade = count
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        if self._unmade:
            with self._lock:
                if self._unmade and self._free.empty():
                    self._unmade -= 1
                    return bytearray(self.size)
        return self._free.get()

    def give(self, buf: bytearray) -> None:
        self._free.put(buf)


def open_for_reading(path: bytes) -> int:
    """Open a file to back up without following a symlink swapped in for it.

    ``O_NOATIME`` keeps access times untouched; it is refused on files the
    caller does not own, so those are opened without it.
    """
    try:
        return os.open(path, _OPEN_FLAGS)
    except PermissionError:
        return os.open(path, _OPEN_FLAGS & ~getattr(os, "O_NOATIME", 0))


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The ``(offset, length)`` ranges of a sparse file that hold data."""
    extents: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break
            if exc.errno == errno.EINVAL:
                return [(0, size)]
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end > start:
            extents.append((start, end - start))
        pos = end
    return extents


def align_extents(extents: list[tuple[int, int]], block: int) -> list[tuple[int, int]]:
    """Widen extents to whole blocks, merging those that then touch."""
    aligned: list[tuple[int, int]] = []
    for start, length in extents:
        lo = start - start % block
        hi = -(-(start + length) // block) * block
        if aligned and lo <= aligned[-1][0] + aligned[-1][1]:
            prev_lo, _ = aligned[-1]
            aligned[-1] = (prev_lo, hi - prev_lo)
        else:
            aligned.append((lo, hi - lo))
    return aligned


def fill(fd: int, view: memoryview, offset: int, limit: int | None) -> int:
    """Read from ``offset`` into ``view`` until it is full, ``limit`` bytes or EOF."""
    want = len(view) if limit is None else min(len(view), limit)
    done = 0
    while done < want:
        got = os.preadv(fd, [view[done:want]], offset + done)
        if got == 0:
            break
        done += got
    return done


def plan_extents(
    fd: int, size: int, blocks: int, block: int | None
) -> Iterator[tuple[int, int | None]]:
    """Ranges to read: the data extents of a sparse file, else all of it to EOF.

    A length of None means "until the end of the file", so a file that grows
    while it is read is read whole.
    """
    if blocks * 512 >= size or size == 0:
        yield (0, None)
        return
    extents = data_extents(fd, size)
    if block is not None:
        extents = align_extents(extents, block)
    for start, length in extents:
        yield (start, min(length, size - start))
