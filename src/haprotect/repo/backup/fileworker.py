"""What a backup worker does with a task: read its files, cut them, store the chunks.

The walking thread hands out tasks (:class:`Task`): a large file alone, or a
batch of small files read back to back into one buffer. The worker opens and
reads them itself, so that the system calls run on the workers, in
parallel; it cuts them into chunks (content-defined, or fixed blocks for
page-structured files) and stores the chunks through the
:class:`~haprotect.repo.blobs.blobsink.BlobSink`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future

from haprotect.model.snapshot import ContentEntry
from haprotect.repo.backup.filereader import BufferPool, fill, plan_extents
from haprotect.repo.backup.walker import SYSTEM_FILES, Entry, SourceFiles, Xattrs
from haprotect.repo.blobs.blobsink import BlobSink, Compressors, ZeroChunks, prepare_chunks
from haprotect.repo.blobs.chunker import (
    SAMPLE_BYTES,
    Chunker,
    fixed_block_size,
    looks_paged,
    sample_offsets,
)
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.format.tree import file_record
from haprotect.repo.process.forkpool import ForkPool, PooledProcess, ProcessLost

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
        """What the worker stored, set before :attr:`done` (read without the future's lock)."""
        self.done = False
        """The worker is done with the task (its future's result, or error, follows at once):
        a plain flag, read once per file without the future's lock. The worker sets it itself,
        not a callback of the future, which would make a cycle (task, future, callback) that
        keeps every task, its files and their results until a full garbage collection."""


class FileWorker:
    """Runs tasks on the worker threads of one backup."""

    def __init__(
        self,
        config: RepoConfig,
        seed: int,
        sink: BlobSink,
        pool: BufferPool,
        *,
        xattrs: bool,
        readers: ForkPool | None = None,
        files: SourceFiles = SYSTEM_FILES,
    ) -> None:
        """``xattrs``: read each file's extended attributes through its open descriptor.

        The walk leaves them to the reader of a file that changed: an
        unchanged file keeps its parent's, and the reader's threads run in
        parallel where the walk's caller does not. ``readers``: processes
        that read batches of small files (:class:`SmallFileReader`) when one
        is free. ``files``: how files are opened and their xattrs read.
        """
        self._config = config
        self._xattrs = xattrs
        self._seed = seed
        self._sink = sink
        self._pool = pool
        self._readers = readers
        self._files = files
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
            task.done = True

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
            fd = self._files.open(entry.source)
        except OSError as exc:
            return [], 0, 0, exc.strerror or str(exc), None
        try:
            xattrs = self._files.read_xattrs(fd) if self._xattrs else None
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
        lie in the order of the tree in the pack. Where a reading process
        is free, it reads, cuts and compresses the batch instead
        (:class:`SmallFileReader`); this thread packs the result.
        """
        readers = self._readers
        if readers is not None:
            reader = readers.take()
            if reader is not None:
                through = self._store_through(reader, readers, files)
                if through is not None:
                    return through
        wanted = self._xattrs
        chunks, read = read_small_files(
            [(entry.source, start, size, wanted) for entry, start, size in files],
            view,
            self._chunker(),
            self._config.chunker.min_size,
            self._files,
        )
        entries = self._sink.store(chunks, small=True)
        stored: list[Stored] = []
        for (entry, _, _), (first, count, got, failed, xattrs) in zip(files, read, strict=True):
            if failed is not None:
                stored.append(([], 0, 0, failed, None))
                continue
            content = merged(entries[first : first + count])
            stored.append((content, got, got, None, entry.record(got, content, xattrs)))
        return stored

    def _store_through(
        self, reader: PooledProcess, readers: ForkPool, files: list[tuple[Entry, int, int]]
    ) -> list[Stored] | None:
        """A batch read by ``reader`` (a :class:`SmallFileReader`), packed here.

        None if the reader was lost: the caller reads the batch itself.
        """
        request = [
            (entry.source, size, entry.head, None if entry.lazy_xattrs else entry.xattrs)
            for entry, _, size in files
        ]
        try:
            replies, placed = reader.call(request)
        except ProcessLost as exc:
            readers.lose(reader, str(exc))
            return None
        shared = reader.buffer
        views = [shared[at : at + n] for _, _, at, n in placed]
        try:
            self._sink.store_prepared(
                [(p[0], p[1], view) for p, view in zip(placed, views, strict=True)]
            )
        finally:
            # no view of the buffer outlives this (not even in a traceback):
            # the reader writes it again, or it is unmapped
            for view in views:
                view.release()
            readers.give(reader)
        stored: list[Stored] = []
        for (entry, _, _), (content, got, failed, record, xattrs) in zip(
            files, replies, strict=True
        ):
            if failed is not None:
                stored.append(([], 0, 0, failed, None))
            elif record is None:  # the file shrank since the walk
                stored.append((content, got, got, None, entry.record(got, content, xattrs)))
            else:
                stored.append((content, got, got, None, record))
        return stored


SmallFile = tuple[bytes, int, int, bool]
"""A small file to read: its source, offset in the buffer, size (as walked), and
whether to read its xattrs."""

FileRead = tuple[int, int, int, str | None, Xattrs | None]
"""How a small file was read: its first chunk, number of chunks, bytes read,
error message, xattrs (if asked for)."""


def read_small_files(
    files: Iterable[SmallFile],
    view: memoryview,
    chunker: Chunker,
    min_size: int,
    source_files: SourceFiles = SYSTEM_FILES,
) -> tuple[list[memoryview], list[FileRead]]:
    """Read small files into their places in ``view`` and cut them into chunks.

    Each is read up to the size the walk saw, its xattrs through the open
    descriptor (``source_files``: how). A file that cannot be read has its
    error in its :data:`FileRead`; the others go on.
    """
    open_file, read_xattrs = source_files.open, source_files.read_xattrs
    chunks: list[memoryview] = []
    read: list[FileRead] = []
    for source, start, size, with_xattrs in files:
        try:
            fd = open_file(source)
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
            cuts, _ = chunker.cut(data, final=True, block=None)
            chunks += [data[off : off + n] for off, n in cuts]
        elif got:
            chunks.append(data)
        read.append((first, len(chunks) - first, got, None, xattrs))
    return chunks, read


MAX_SENT_IDS = 1 << 16
"""Chunk ids a reader remembers having sent (about 6 MiB), so as not to send them again."""

SmallFileRequest = list[tuple[bytes, int, bytes, Xattrs | None]]
"""Small files for a :class:`SmallFileReader`: source, size as walked, record head
(:attr:`Entry.head`), and xattrs if the walk has them."""

SmallFileReply = tuple[
    list[tuple[list[ContentEntry], int, str | None, bytes | None, Xattrs | None]],
    list[tuple[bytes, int, int, int]],
]
"""Per file: content, bytes read, error, record (None if it shrank since the walk:
then its xattrs follow); and per new chunk: id, length, offset and length as stored
in the shared buffer."""


class SmallFileReader:
    """A backup's reading process: reads, cuts, hashes and compresses batches of small files.

    Made in a process forked by the backup (:class:`~haprotect.repo.process.forkpool.ForkPool`),
    with what the backup had: the key, the repository's index, the chunker's
    settings. It leaves in the shared buffer, back to back, each chunk that
    is neither in the index nor sent before, compressed where that helps;
    the thread that sent the batch packs them (its
    :meth:`~haprotect.repo.blobs.blobsink.BlobSink.store_prepared` claims them
    again against every other thread's), so every chunk is stored once. It
    uses no lock the backup's other threads take (none of ``cryptography``,
    which encrypts in the backup's process), as it is forked while they run.
    """

    def __init__(
        self,
        config: RepoConfig,
        key: MasterKey,
        index: Index,
        buffer_size: int,
        files: SourceFiles = SYSTEM_FILES,
    ) -> None:
        self._key = key
        self._files = files
        self._index = index
        self._min_size = config.chunker.min_size
        self._chunker = Chunker(config.chunker, key.chunker_seed)
        self._compressors = Compressors(config.compression_level)
        self._zeros = ZeroChunks(key)
        self._sent: set[bytes] = set()
        self._buffer = memoryview(bytearray(buffer_size))

    def _claim(self, chunk_id: bytes) -> bool:
        if chunk_id in self._sent or chunk_id in self._index:
            return False
        if len(self._sent) >= MAX_SENT_IDS:
            self._sent.clear()  # a chunk sent again is claimed by one thread only
        self._sent.add(chunk_id)
        return True

    def __call__(self, request: SmallFileRequest, shared: memoryview) -> SmallFileReply:
        files: list[SmallFile] = []
        pos = 0
        for source, size, _, xattrs in request:
            files.append((source, pos, size, xattrs is None))
            pos += size
        chunks, read = read_small_files(
            files, self._buffer, self._chunker, self._min_size, self._files
        )
        entries, new = prepare_chunks(
            chunks, self._key, self._zeros, self._claim, self._compressors
        )
        placed: list[tuple[bytes, int, int, int]] = []
        at = 0
        for chunk_id, length, stored in new:
            n = len(stored)
            shared[at : at + n] = stored
            placed.append((chunk_id, length, at, n))
            at += n
        replies: list[tuple[list[ContentEntry], int, str | None, bytes | None, Xattrs | None]] = []
        for (_, size, head, known), (first, count, got, failed, found) in zip(
            request, read, strict=True
        ):
            if failed is not None:
                replies.append(([], 0, failed, None, None))
                continue
            content = merged(entries[first : first + count])
            xattrs = known if known is not None else found or ()
            if got == size:
                replies.append((content, got, None, file_record(head, content, xattrs), None))
            else:
                replies.append((content, got, None, None, xattrs))
        return replies, placed
