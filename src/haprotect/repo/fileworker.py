"""What a backup worker does with a task: read its files, cut them, store the chunks.

The walking thread hands out tasks (:class:`Task`): a large file alone, or a
batch of small files read back to back into one buffer. The worker opens and
reads them itself, so that the system calls run on the workers, in
parallel; it cuts them into chunks (content-defined, or fixed blocks for
page-structured files) and stores the chunks through the
:class:`~haprotect.repo.blobsink.BlobSink`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future

from haprotect.model.snapshot import ContentEntry
from haprotect.repo.blobsink import BlobSink
from haprotect.repo.chunker import (
    SAMPLE_BYTES,
    Chunker,
    fixed_block_size,
    looks_paged,
    sample_offsets,
)
from haprotect.repo.config import RepoConfig
from haprotect.repo.filereader import BufferPool, fill, open_for_reading, plan_extents
from haprotect.repo.walker import Entry, Xattrs, read_xattrs

# What a worker returns for one file: its content, size, bytes read, error
# message, and its tree record (None after an error), which the worker makes
# so that the walk's caller only puts it in its place. The xattrs in the
# record are read through the open file when the worker is asked to.
Stored = tuple[list[ContentEntry], int, int, str | None, bytes | None]


def merged(entries: Iterable[ContentEntry]) -> list[ContentEntry]:
    """Content entries with consecutive lengths of zeros (holes, zero chunks) added up."""
    content: list[ContentEntry] = []
    for e in entries:
        if isinstance(e, int) and content and isinstance(content[-1], int):
            content[-1] += e
        else:
            content.append(e)
    return content


class Task:
    """Files handed to a worker as one unit, with a buffer to read them into.

    A large file's task holds it alone (``large``: source, size, allocated
    blocks, name), which the worker reads buffer by buffer; a batch of small
    files holds ``files`` (source, offset in the buffer, size). The worker
    opens, reads and cuts them itself, so that the system calls run on the
    workers, in parallel.
    """

    __slots__ = ("buf", "done", "files", "future", "large", "results")

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf
        self.files: list[tuple[Entry, int, int]] = []
        self.large: Entry | None = None
        self.future: Future[list[Stored]] | None = None
        self.results: list[Stored] | None = None
        """What the worker stored, set before the future completes (read without its lock)."""
        self.done = False
        """The future is done: a plain flag, read once per file without the future's lock."""

    def finished(self, _future: Future[list[Stored]]) -> None:
        self.done = True


class FileWorker:
    """Runs tasks on the worker threads of one backup."""

    def __init__(
        self, config: RepoConfig, seed: int, sink: BlobSink, pool: BufferPool, *, xattrs: bool
    ) -> None:
        """``xattrs``: read each file's extended attributes through its open descriptor.

        The walk leaves them to the reader of a file that changed: an
        unchanged file keeps its parent's, and the reader's threads run in
        parallel where the walk's caller does not.
        """
        self._config = config
        self._xattrs = xattrs
        self._seed = seed
        self._sink = sink
        self._pool = pool
        self._local = threading.local()

    def store(self, task: Task) -> list[Stored]:
        try:
            view = memoryview(task.buf)
            if task.large is not None:
                results = [self._store_large(view, task.large)]
            else:
                results = self._store_small(view, task.files)
            task.results = results
            return results
        finally:
            self._pool.give(task.buf)

    def _chunker(self) -> Chunker:
        """This thread's content-defined chunker."""
        chunker: Chunker | None = getattr(self._local, "chunker", None)
        if chunker is None:
            chunker = self._local.chunker = Chunker(self._config.chunker, self._seed)
        return chunker

    def _store_large(self, view: memoryview, entry: Entry) -> Stored:
        """Worker: read a large file buffer by buffer, cut it and store its chunks.

        Its data extents are read (holes become lengths), each up to the end
        of the file, so a file that grows while it is read is read whole.
        """
        size, blocks = entry.st.st_size, entry.blocks
        try:
            fd = open_for_reading(entry.source)
        except OSError as exc:
            return [], 0, 0, exc.strerror or str(exc), None
        try:
            xattrs = read_xattrs(fd) if self._xattrs else None
            params = self._config.chunker
            block = fixed_block_size(params, size)
            if block is not None:
                samples = [os.pread(fd, SAMPLE_BYTES, at) for at in sample_offsets(size)]
                name = entry.rel.rpartition(b"/")[2]
                block = fixed_block_size(params, size, looks_paged(name, samples))
            content: list[ContentEntry] = []
            pos = read = 0
            for start, length in plan_extents(fd, size, blocks, block):
                if start > pos:
                    content.append(start - pos)
                end = self._read_extent(fd, view, start, length, block, content)
                read += end - start
                pos = end
            if pos < size and blocks * 512 < size:
                content.append(size - pos)
                pos = size
            content = merged(content)
            return content, pos, read, None, entry.record(pos, content, xattrs)
        except OSError as exc:
            return [], 0, 0, exc.strerror or str(exc), None
        finally:
            os.close(fd)

    def _read_extent(
        self,
        fd: int,
        view: memoryview,
        offset: int,
        length: int | None,
        block: int | None,
        content: list[ContentEntry],
    ) -> int:
        # The bytes after the last whole chunk of a buffer are read again into
        # the next one: a second read from the page cache costs less than
        # carrying them over (a copy).
        end = None if length is None else offset + length
        chunker = self._chunker()
        store = self._sink.store
        while True:
            limit = None if end is None else end - offset
            got = fill(fd, view, offset, limit)
            final = got < len(view) or got == limit
            cuts, covered = chunker.cut(view[:got], final=final, block=block)
            content += store([view[off : off + n] for off, n in cuts])
            offset += covered
            if final:
                return offset

    def _store_small(self, view: memoryview, files: list[tuple[Entry, int, int]]) -> list[Stored]:
        """Worker: read a batch of small files into their places, cut them, store the chunks.

        Each file is read up to the size the walk saw (like a large file's
        extents). The chunks of the whole batch are stored together, so they
        lie in the order of the tree in the pack.
        """
        chunks: list[memoryview] = []
        read: list[tuple[int, int, int, str | None, Xattrs | None]] = []
        min_size = self._config.chunker.min_size
        with_xattrs = self._xattrs
        for entry, start, size in files:
            try:
                fd = open_for_reading(entry.source)
                try:
                    got = fill(fd, view[start : start + size], 0, size)
                    xattrs = read_xattrs(fd) if with_xattrs else None
                finally:
                    os.close(fd)
            except OSError as exc:
                read.append((0, 0, 0, exc.strerror or str(exc), None))
                continue
            data = view[start : start + got]
            first = len(chunks)
            if got > min_size:
                cuts, _ = self._chunker().cut(data, final=True, block=None)
                chunks += [data[off : off + n] for off, n in cuts]
            elif got:
                chunks.append(data)
            read.append((first, len(chunks) - first, got, None, xattrs))
        entries = self._sink.store(chunks, small=True)
        stored: list[Stored] = []
        for (entry, _, _), (first, count, got, failed, xattrs) in zip(files, read, strict=True):
            if failed is not None:
                stored.append(([], 0, 0, failed, None))
                continue
            content = merged(entries[first : first + count])
            stored.append((content, got, got, None, entry.record(got, content, xattrs)))
        return stored
