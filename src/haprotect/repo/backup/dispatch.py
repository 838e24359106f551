"""Handing a backup's files to its workers, and the nodes that wait for them.

A large file is one task, which a worker reads buffer by buffer. Small
files are given places, back to back, in the buffer of the current batch,
which goes to a worker when it holds :data:`SMALL_BATCH_FILES` files or is
full; once ``readers_after_batches`` (an option) batches have gone out, the reading
processes are forked (:class:`~haprotect.repo.backup.fileworker.SmallFileReader`).
Every node waits in the backup's queue, in walk order, until its chunks are
stored (:class:`Queued`); new small files in a row wait as one group.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from itertools import islice

from haprotect.model.snapshot import Node
from haprotect.repo.backup.filereader import BufferPool
from haprotect.repo.backup.fileworker import FileWorker, Task
from haprotect.repo.backup.options import BackupOptions
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.walker import Entry
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index

SMALL_BATCH_FILES = 256


class Kind(Enum):
    """What a backed-up node is, as the backup's statistics count it (``OTHER``: not a file)."""

    NEW = 1
    CHANGED = 2
    UNCHANGED = 3
    OTHER = 4


Piece = tuple[Task, int] | int
"""Where a file's content comes from: a task and the file's place in it, or a hole's length."""


@dataclass(slots=True)
class Queued:
    """A node waiting for its chunks to be stored, or an unchanged file's record.

    Or new small files in a row (``group``), read by one task from its
    ``pieces[0]`` on: recorded together, with one step each, not a dozen.
    """

    node: Node | None
    kind: Kind
    pieces: list[Piece] | None = None
    size: int = 0
    record: bytes | None = None
    entry: Entry | None = None
    sized: bool = False
    link: bool = False
    group: list[Entry] | None = None


def group_start(queued: Queued) -> tuple[Task, int]:
    """The task that reads a group of new small files, and the first one's place in it."""
    assert queued.pieces is not None
    start = queued.pieces[0]
    assert not isinstance(start, int)
    return start


class Dispatcher:
    """Gives a backup's files to its workers (and readers); queues their nodes in ``queue``."""

    def __init__(
        self,
        config: RepoConfig,
        key: MasterKey,
        index: Index,
        sink: BlobSink,
        options: BackupOptions,
        queue: deque[Queued],
        parts: BackupParts,
    ) -> None:
        self._options = options
        self._queue = queue
        # a buffer longer than the largest chunk always yields a whole chunk
        size = max(options.buffer_size, config.chunker.max_size + config.chunker.min_size)
        self._pool = BufferPool(options.buffers or options.workers + 1, size)
        count = options.reader_count()
        files, make_reader = parts.files, parts.reader
        self._readers = (
            parts.readers(lambda: make_reader(config, key, index, size, files), size, count)
            if count
            else None
        )
        self._worker = FileWorker(
            config,
            key.chunker_seed,
            sink,
            self._pool,
            xattrs=options.xattrs,
            readers=self._readers,
            files=files,
        )
        self._workers = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-chunk")
        self._batch: Task | None = None
        self._batch_pos = 0
        self._small_batches = 0

    def file(self, entry: Entry, kind: Kind) -> Queued | None:
        """Hand a file to the workers; its queued node (to queue), or None if it joined a group."""
        size = entry.st.st_size
        small = size <= self._options.small_file and size < self._pool.size
        if small and size and kind is Kind.NEW and entry.st.st_nlink == 1:
            self._new_small_file(entry, size)
            return None
        queued = Queued(None, kind, [], entry=entry)
        if size == 0:
            return queued
        assert queued.pieces is not None
        if small:
            queued.pieces.append(self._place_small(entry, size))
            queued.sized = True
            self._submit_full_batch()
            return queued
        task = Task(self._pool.take())
        task.large = entry
        queued.pieces.append((task, 0))
        queued.sized = True
        self._submit(task)
        return queued

    def new_small_files(self, batch: list[Entry], start: int) -> int:
        """Hand out the new small files from ``batch[start]`` on (no parent left); how many."""
        limit = min(self._options.small_file, self._pool.size - 1)
        taken = 0
        for entry in islice(batch, start, None):
            st = entry.st
            size = st.st_size
            if not entry.is_file or not 0 < size <= limit or st.st_nlink != 1:
                break
            self._new_small_file(entry, size)
            taken += 1
        return taken

    def submit_batch(self) -> None:
        """Send the current batch of small files to a worker, however full."""
        if self._batch is not None:
            self._small_batches += 1
            after = self._options.readers_after_batches
            if self._small_batches == after and self._readers is not None:
                self._readers.start()
            self._submit(self._batch)
            self._batch = None

    def holds(self, queued: Queued) -> bool:
        """Whether ``queued`` waits for the current batch, which is not sent yet."""
        batch = self._batch
        return batch is not None and any(
            not isinstance(p, int) and p[0] is batch for p in queued.pieces or ()
        )

    def close(self, *, failed: bool) -> None:
        """End the workers (dropping the tasks not started, if ``failed``) and the readers."""
        self._workers.shutdown(wait=True, cancel_futures=True)
        if self._readers is not None:
            self._readers.close(kill=failed)

    def _new_small_file(self, entry: Entry, size: int) -> None:
        """Give a new small file (one name) a place in the batch and in the last group."""
        task, place = self._place_small(entry, size)
        queue = self._queue
        last = queue[-1] if queue else None
        if last is not None and last.group is not None:
            first_task, first = group_start(last)
            if first_task is task and first + len(last.group) == place:
                last.group.append(entry)
                self._submit_full_batch()
                return
        queue.append(Queued(None, Kind.NEW, [(task, place)], sized=True, group=[entry]))
        self._submit_full_batch()

    def _place_small(self, entry: Entry, size: int) -> tuple[Task, int]:
        """The batch a small file is read in (a new one if it would not fit), and its place."""
        if self._batch is not None and self._batch_pos + size > self._pool.size:
            self.submit_batch()
        if self._batch is None:
            self._batch = Task(self._pool.take())
            self._batch_pos = 0
        task = self._batch
        place = len(task.files)
        task.files.append((entry, self._batch_pos, size))
        self._batch_pos += size
        return task, place

    def _submit_full_batch(self) -> None:
        if self._batch is not None and len(self._batch.files) >= SMALL_BATCH_FILES:
            self.submit_batch()

    def _submit(self, task: Task) -> None:
        task.future = self._workers.submit(self._worker.store, task)
