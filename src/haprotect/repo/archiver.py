"""The backup pipeline: walk, read, chunk, store, record the tree.

The walk runs in a thread of its own, ahead of the caller's
(:class:`~haprotect.repo.lookahead.Lookahead`). The caller takes the entries
in canonical order, asks the files cache about each file and hands each file
that changed to a worker thread, with a pooled buffer: the worker reads it,
cuts it into chunks, and hashes, deduplicates, compresses, encrypts and packs
them (:mod:`haprotect.repo.fileworker`,
:class:`~haprotect.repo.blobsink.BlobSink`); upload threads store finished
packs (:class:`~haprotect.repo.uploader.Uploader`). A large file is one task,
read buffer by buffer, so the workers never wait for the caller's thread to
read for them. Small files are read back to back into one buffer and handed
over as one task, so their per-file cost is a few system calls and a
dictionary lookup; once a backup has handed out a few such batches, it
forks processes that read, cut and compress them in parallel
(:class:`~haprotect.repo.fileworker.SmallFileReader`), while the workers
encrypt and pack what those leave.

Nodes are recorded in walk order: a node waits in a bounded queue until the
chunks of its file are stored, then joins the tree stream. When every node is
recorded the tree chunks, the last packs and the index are stored, and only
then the snapshot.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from haprotect.model.snapshot import BackupStats, ContentEntry, FileError, Node, NodeType
from haprotect.repo.blobsink import BlobSink
from haprotect.repo.chunker import StreamChunker
from haprotect.repo.config import MiB, RepoConfig
from haprotect.repo.crypto import MasterKey
from haprotect.repo.filereader import BufferPool
from haprotect.repo.files_cache import FilesCache
from haprotect.repo.fileworker import FileWorker, SmallFileReader, Task, merged
from haprotect.repo.forking import can_fork
from haprotect.repo.forkpool import ForkPool
from haprotect.repo.index import Index
from haprotect.repo.lookahead import Lookahead
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.switching import short_switch_interval
from haprotect.repo.tree import decode_node, encode_node, encode_xattrs
from haprotect.repo.uploader import Uploader
from haprotect.repo.walker import Entry

MAX_QUEUED_NODES = 4096
_NO_XATTRS_TAIL = b"}\n"


def tail_of(xattrs: tuple[tuple[str, bytes], ...]) -> bytes:
    """The end of a file's record after its content: xattrs and the closing brace."""
    return (encode_xattrs(xattrs) + "}\n").encode() if xattrs else _NO_XATTRS_TAIL


SMALL_BATCH_FILES = 256
READERS_AFTER_BATCHES = 4
"""Batches of small files a backup hands out before it forks its reading processes:
one that reads only a few (most incremental backups) does not fork."""
MAX_READERS = 4


@dataclass(frozen=True, slots=True)
class BackupOptions:
    workers: int = max(2, os.cpu_count() or 2)
    upload_threads: int = 4
    buffer_size: int = 0
    buffers: int = 0
    small_file: int = 1 * MiB
    xattrs: bool = True
    one_file_system: bool = False
    readers: int | None = None
    """Processes that read batches of small files beside the threads
    (:class:`~haprotect.repo.fileworker.SmallFileReader`): None for one per
    core (up to 4) where the system can fork and has two cores, 0 for none."""

    def reader_count(self) -> int:
        if not can_fork():
            return 0
        if self.readers is not None:
            return max(0, self.readers)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return min(MAX_READERS, cores) if cores >= 2 else 0


class _Kind(Enum):
    NEW = 1
    CHANGED = 2
    UNCHANGED = 3
    OTHER = 4


Part = tuple[Task, int] | int


@dataclass(slots=True)
class _Queued:
    """A node waiting for its chunks to be stored, or an unchanged file's record."""

    node: Node | None
    kind: _Kind
    parts: list[Part] | None = None
    size: int = 0
    record: bytes | None = None
    entry: Entry | None = None
    sized: bool = False
    link: bool = False


_STAT_OF_KIND = {_Kind.NEW: "new", _Kind.CHANGED: "changed", _Kind.UNCHANGED: "unchanged"}


class _Unreadable(Exception):
    """A file a worker could not read (its message is the error's)."""


class Archiver:
    def __init__(
        self,
        key: MasterKey,
        config: RepoConfig,
        index: Index,
        uploader: Uploader,
        options: BackupOptions,
        meter: ProgressMeter,
        errors: list[FileError] | None = None,
    ) -> None:
        """``errors`` collects the files that could not be backed up (the walk's too)."""
        self._config = config
        self._options = options
        self._meter = meter
        self._tree_chunker = StreamChunker(config.chunker, key.chunker_seed)
        # a buffer longer than the largest chunk always yields a whole chunk
        size = max(options.buffer_size, config.chunker.max_size + config.chunker.min_size)
        self._pool = BufferPool(options.buffers or options.workers + 1, size)
        self._sink = BlobSink(
            key,
            index,
            uploader,
            pack_size=config.pack_size,
            max_blob=max(config.chunker.max_size, config.chunker.tree_max_size),
            level=config.compression_level,
        )
        self._tree_writer = self._sink.new_tree_writer()
        self._readers = self._reader_pool(config, key, index, options.reader_count())
        self._small_batches = 0
        self._worker = FileWorker(
            config,
            key.chunker_seed,
            self._sink,
            self._pool,
            xattrs=options.xattrs,
            readers=self._readers,
        )
        self._uploader = uploader
        self._workers = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-chunk")
        self._queue: deque[_Queued] = deque()
        self._links: dict[str, _Queued] = {}
        self._batch: Task | None = None
        self._batch_pos = 0
        self.tree: list[str] = []
        self.errors: list[FileError] = [] if errors is None else errors
        self._stats = {k: 0 for k in ("new", "changed", "unchanged", "dirs", "others", "read")}
        self._files_done = 0
        self._bytes_done = 0

    def _reader_pool(
        self, config: RepoConfig, key: MasterKey, index: Index, count: int
    ) -> ForkPool | None:
        if not count:
            return None
        size = self._pool.size
        return ForkPool(lambda: SmallFileReader(config, key, index, size), size, count)

    def error(self, path: str, message: str) -> None:
        self.errors.append(FileError(path, message))

    def run(self, entries: Lookahead[Entry], cache: FilesCache) -> None:
        with short_switch_interval():
            self._run(entries, cache)

    def _run(self, entries: Lookahead[Entry], cache: FilesCache) -> None:
        try:
            for batch in entries.batches():
                self._batch_of_entries(batch, cache)
            self._submit_batch()
            while self._queue:
                self._drain(wait=True)
            for chunk in self._tree_chunker.finish():
                self.tree.append(self._sink.store_tree(self._tree_writer, chunk).hex())
        except BaseException:
            self._workers.shutdown(wait=True, cancel_futures=True)
            try:
                self._close_readers(kill=True)
            finally:
                self._sink.close(self._tree_writer)
            raise
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._close_readers(kill=False)
        try:
            self._sink.flush(self._tree_writer)
        finally:
            self._sink.close(self._tree_writer)

    def _batch_of_entries(self, batch: list[Entry], cache: FilesCache) -> None:
        """Back up the entries of one batch of the walk, in order.

        Runs of files that are unchanged since the parent are recorded
        whole (:meth:`FilesCache.unchanged_run`); after a file in a run
        differs, the rest of the batch goes one entry at a time.
        """
        i, end = 0, len(batch)
        runs = True
        while i < end:
            if runs and not self._queue and not cache.exhausted:
                j = i
                while j < end and batch[j].is_file and batch[j].lazy_xattrs:
                    j += 1
                if j > i:
                    taken = cache.unchanged_run([e.head for e in batch[i:j]])
                    if taken:
                        self._record_unchanged(batch[i : i + len(taken)], taken)
                        i += len(taken)
                    runs = i == j
                    if taken:
                        continue
            self._entry(batch[i], cache)
            i += 1

    def _entry(self, entry: Entry, cache: FilesCache) -> None:
        queue = self._queue
        if entry.is_file:
            head = entry.head
            record = cache.matching_record(head) or (
                None if cache.exhausted else cache.lookup_record(entry.key)
            )
            tail = None if entry.lazy_xattrs else tail_of(entry.xattrs)
            if record is not None and cache.reuse_record(record, head, tail):
                if not queue:
                    self._record_unchanged([entry], [record])
                    return
                size = entry.st.st_size
                queue.append(_Queued(None, _Kind.UNCHANGED, None, size, record, entry))
            else:
                parent = decode_node(record) if record is not None else None
                self._file(entry, parent, cache)
        else:
            if not cache.exhausted:
                cache.lookup_record(entry.key)  # the merge goes past its record
            queue.append(_Queued(entry.node, _Kind.OTHER))
        self._uploader.check()
        self._drain(wait=len(queue) > MAX_QUEUED_NODES)
        self._uploader.flush_index()

    def stats(self, duration: float, bytes_added: int) -> BackupStats:
        s = self._stats
        return BackupStats(
            files_new=s["new"],
            files_changed=s["changed"],
            files_unchanged=s["unchanged"],
            dirs=s["dirs"],
            others=s["others"],
            bytes_total=self._bytes_done,
            bytes_read=s["read"],
            bytes_added=bytes_added,
            chunks_added=self._sink.chunks_added,
            errors=len(self.errors),
            duration_s=round(duration, 3),
        )

    def _file(self, entry: Entry, parent: Node | None, cache: FilesCache) -> None:
        content = cache.reuse_content(entry.st, parent)
        if content is not None:
            size = entry.st.st_size
            record = entry.record(size, content)
            self._queue.append(_Queued(None, _Kind.UNCHANGED, None, size, record, entry))
            return
        kind = _Kind.CHANGED if parent is not None else _Kind.NEW
        hardlink = entry.hardlink
        first = self._links.get(hardlink) if hardlink else None
        if first is not None:
            # a file's size is known when a worker has read it
            self._queue.append(
                _Queued(None, kind, first.parts, first.size, None, entry, first.sized, link=True)
            )
            return
        try:
            queued = self._read(entry, kind)
        except OSError as exc:
            self.error(entry.path, exc.strerror or str(exc))
            return
        self._queue.append(queued)
        if hardlink:
            self._links[hardlink] = queued

    def _read(self, entry: Entry, kind: _Kind) -> _Queued:
        queued = _Queued(None, kind, [], entry=entry)
        size = entry.st.st_size
        if size == 0:
            return queued
        if size <= self._options.small_file and size < self._pool.size:
            self._read_small(entry, queued)
            return queued
        task = Task(self._pool.take())
        task.large = entry
        assert queued.parts is not None
        queued.parts.append((task, 0))
        queued.sized = True
        self._submit(task)
        return queued

    def _read_small(self, entry: Entry, queued: _Queued) -> None:
        """Give a small file a place in the current batch; a worker will read it."""
        size = entry.st.st_size
        if self._batch is not None and self._batch_pos + size > self._pool.size:
            self._submit_batch()
        if self._batch is None:
            self._batch = Task(self._pool.take())
            self._batch_pos = 0
        task = self._batch
        assert queued.parts is not None
        queued.parts.append((task, len(task.files)))
        queued.sized = True
        task.files.append((entry, self._batch_pos, size))
        self._batch_pos += size
        if len(task.files) >= SMALL_BATCH_FILES:
            self._submit_batch()

    def _submit_batch(self) -> None:
        if self._batch is not None:
            self._small_batches += 1
            if self._small_batches == READERS_AFTER_BATCHES and self._readers is not None:
                self._readers.start()
            self._submit(self._batch)
            self._batch = None

    def _close_readers(self, *, kill: bool) -> None:
        if self._readers is not None:
            self._readers.close(kill=kill)

    def _submit(self, task: Task) -> None:
        task.future = self._workers.submit(self._worker.store, task)

    def _drain(self, *, wait: bool) -> None:
        while self._queue:
            head = self._queue[0]
            if not self._ready(head):
                if not wait:
                    return
                if self._batch is not None and any(
                    not isinstance(p, int) and p[0] is self._batch for p in head.parts or ()
                ):
                    self._submit_batch()
                wait = False
            self._queue.popleft()
            try:
                record = self._complete(head)
            except _Unreadable as exc:
                assert head.entry is not None
                self.error(head.entry.path, str(exc))
                continue
            self._record(record, head)

    @staticmethod
    def _ready(queued: _Queued) -> bool:
        for part in queued.parts or ():
            if not isinstance(part, int) and not part[0].done:
                return False
        return True

    def _complete(self, queued: _Queued) -> bytes:
        """The tree record of a queued node, once its chunks are stored."""
        if queued.record is not None:
            return queued.record
        if queued.node is not None:
            return encode_node(queued.node)
        assert queued.entry is not None and queued.parts is not None
        content: list[ContentEntry] = []
        for part in queued.parts:
            if isinstance(part, int):
                content.append(part)
                continue
            task, segment = part
            results = task.results
            if results is None:
                assert task.future is not None
                results = task.future.result()  # waits (or raises what the worker raised)
            entries, size, read, failed, record = results[segment]
            if failed is not None:
                raise _Unreadable(failed)
            if queued.sized:
                queued.size = size
                if not queued.link:
                    self._stats["read"] += read
            if record is not None and not queued.link:
                return record  # the usual case: the worker made it
            content += entries
        return queued.entry.record(queued.size, merged(content))

    def _record(self, record: bytes, queued: _Queued) -> None:
        stats = self._stats
        node = queued.node
        if queued.kind is _Kind.OTHER:
            assert node is not None
            stats["dirs" if node.type is NodeType.DIR else "others"] += 1
        else:
            stats[_STAT_OF_KIND[queued.kind]] += 1
            self._files_done += 1
            self._bytes_done += queued.size
        self._feed_tree(record)
        if self._meter.active:
            if node is not None:
                path = node.path
            else:
                assert queued.entry is not None
                path = queued.entry.path
            self._meter.update(self._files_done, self._bytes_done, path)

    def _record_unchanged(self, entries: list[Entry], records: list[bytes]) -> None:
        """:meth:`_record` for unchanged files with nothing queued before them (the usual case)."""
        count = len(records)
        self._stats["unchanged"] += count
        self._files_done += count
        self._bytes_done += sum([e.st.st_size for e in entries])
        self._feed_tree(b"".join(records) if count > 1 else records[0])
        if self._meter.active:
            self._meter.update(self._files_done, self._bytes_done, entries[-1].path)

    def _feed_tree(self, record: bytes) -> None:
        for chunk in self._tree_chunker.feed(record):
            self.tree.append(self._sink.store_tree(self._tree_writer, chunk).hex())
