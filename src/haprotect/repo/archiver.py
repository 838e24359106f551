"""The backup pipeline: walk, read, chunk, store, record the tree.

One thread (the caller's) walks the paths in canonical order, asks the files
cache about each file, reads the files that changed into pooled buffers and
cuts them into chunks. Worker threads hash, deduplicate, compress, encrypt
and pack the chunks (:class:`~haprotect.repo.blobsink.BlobSink`); upload
threads store finished packs (:class:`~haprotect.repo.uploader.Uploader`).
Small files are read back to back into one buffer and handed over as one
task, so their per-file cost is a few system calls and a dictionary lookup.

Nodes are recorded in walk order: a node waits in a bounded queue until the
chunks of its file are stored, then joins the tree stream. When every node is
recorded the tree chunks, the last packs and the index are stored, and only
then the snapshot.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum

from haprotect.model.snapshot import BackupStats, ContentEntry, FileError, Node, NodeType
from haprotect.repo.blobsink import BlobSink
from haprotect.repo.chunker import Chunker, Cut, StreamChunker, fixed_block_size
from haprotect.repo.config import MiB, RepoConfig
from haprotect.repo.crypto import MasterKey
from haprotect.repo.filereader import BufferPool, fill, open_for_reading, plan_extents
from haprotect.repo.files_cache import FilesCache
from haprotect.repo.index import Index
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.tree import encode_node
from haprotect.repo.uploader import Uploader
from haprotect.repo.walker import Entry

MAX_QUEUED_NODES = 4096
SMALL_BATCH_FILES = 256


@dataclass(frozen=True, slots=True)
class BackupOptions:
    workers: int = max(2, os.cpu_count() or 2)
    upload_threads: int = 4
    buffer_size: int = 8 * MiB
    buffers: int = 0
    small_file: int = 1 * MiB
    xattrs: bool = True
    one_file_system: bool = False


class _Kind(Enum):
    NEW = 1
    CHANGED = 2
    UNCHANGED = 3
    OTHER = 4


Segment = tuple[int, list[Cut]]


class _Task:
    """One buffer's worth of chunks, handed to a worker as one unit."""

    __slots__ = ("buf", "future", "segments")

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf
        self.segments: list[Segment] = []
        self.future: Future[list[list[ContentEntry]]] | None = None


Part = tuple[_Task, int] | int


@dataclass(slots=True)
class _Queued:
    node: Node
    kind: _Kind
    parts: list[Part] | None = None
    size: int = 0


class Archiver:
    def __init__(
        self,
        key: MasterKey,
        config: RepoConfig,
        index: Index,
        uploader: Uploader,
        options: BackupOptions,
        meter: ProgressMeter,
    ) -> None:
        self._config = config
        self._options = options
        self._meter = meter
        self._chunker = Chunker(config.chunker, key.chunker_seed)
        self._tree_chunker = StreamChunker(config.chunker, key.chunker_seed)
        size = max(options.buffer_size, 2 * config.chunker.max_size)
        self._pool = BufferPool(options.buffers or 2 * options.workers + 2, size)
        self._sink = BlobSink(
            key,
            index,
            uploader,
            pack_size=config.pack_size,
            max_blob=max(config.chunker.max_size, config.chunker.tree_max_size),
            level=config.compression_level,
        )
        self._tree_writer = self._sink.new_tree_writer()
        self._uploader = uploader
        self._workers = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-chunk")
        self._queue: deque[_Queued] = deque()
        self._links: dict[str, _Queued] = {}
        self._batch: _Task | None = None
        self._batch_pos = 0
        self.tree: list[str] = []
        self.errors: list[FileError] = []
        self._stats = {k: 0 for k in ("new", "changed", "unchanged", "dirs", "others", "read")}
        self._files_done = 0
        self._bytes_done = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(FileError(path, message))

    def run(self, entries: Iterable[Entry], cache: FilesCache) -> None:
        try:
            for entry in entries:
                self._uploader.check()
                node = entry.node
                parent = cache.lookup(node.path)
                if node.type is NodeType.FILE:
                    self._file(entry, parent, cache)
                else:
                    self._queue.append(_Queued(node, _Kind.OTHER))
                self._drain(wait=len(self._queue) > MAX_QUEUED_NODES)
                self._uploader.flush_index()
            self._submit_batch()
            while self._queue:
                self._drain(wait=True)
            for chunk in self._tree_chunker.finish():
                self.tree.append(self._sink.store_tree(self._tree_writer, chunk).hex())
        finally:
            self._workers.shutdown(wait=True, cancel_futures=True)
        self._sink.flush(self._tree_writer)

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
        node = entry.node
        reused = cache.reuse(node, parent)
        if reused is not None:
            self._queue.append(_Queued(reused, _Kind.UNCHANGED, size=reused.size))
            return
        kind = _Kind.CHANGED if parent is not None else _Kind.NEW
        first = self._links.get(node.hardlink) if node.hardlink else None
        if first is not None:
            self._queue.append(_Queued(node, kind, first.parts, first.size))
            return
        try:
            queued = self._read(entry, kind)
        except OSError as exc:
            self.error(node.path, exc.strerror or str(exc))
            return
        self._queue.append(queued)
        if node.hardlink:
            self._links[node.hardlink] = queued

    def _read(self, entry: Entry, kind: _Kind) -> _Queued:
        node = entry.node
        queued = _Queued(node, kind, [])
        if node.size == 0:
            return queued
        block = fixed_block_size(self._config.chunker, node.size)
        fd = open_for_reading(entry.source)
        try:
            if block is None and node.size <= self._options.small_file:
                self._read_small(fd, queued)
            else:
                self._read_large(fd, entry, block, queued)
        finally:
            os.close(fd)
        return queued

    def _read_small(self, fd: int, queued: _Queued) -> None:
        size = queued.node.size
        if self._batch is not None and self._batch_pos + size > self._pool.size:
            self._submit_batch()
        if self._batch is None:
            self._batch = _Task(self._pool.take())
            self._batch_pos = 0
        task, start = self._batch, self._batch_pos
        view = memoryview(task.buf)[start : start + size]
        got = fill(fd, view, 0, size)
        cuts = self._cut(view[:got])
        assert queued.parts is not None
        queued.parts.append((task, len(task.segments)))
        task.segments.append((start, cuts))
        queued.size = got
        self._stats["read"] += got
        self._batch_pos += got
        if len(task.segments) >= SMALL_BATCH_FILES:
            self._submit_batch()

    def _cut(self, view: memoryview) -> list[Cut]:
        if len(view) <= self._config.chunker.min_size:
            return [(0, len(view))] if len(view) else []
        return self._chunker.cut(view, final=True, block=None)[0]

    def _read_large(self, fd: int, entry: Entry, block: int | None, queued: _Queued) -> None:
        assert queued.parts is not None
        parts = queued.parts
        pos = 0
        for start, length in plan_extents(fd, entry.node.size, entry.blocks, block):
            if start > pos:
                parts.append(start - pos)
            pos = self._read_extent(fd, start, length, block, parts)
        if pos < entry.node.size and entry.blocks * 512 < entry.node.size:
            parts.append(entry.node.size - pos)
            pos = entry.node.size
        queued.size = pos

    def _read_extent(
        self, fd: int, offset: int, length: int | None, block: int | None, parts: list[Part]
    ) -> int:
        carry = b""
        remaining = length
        while True:
            task = _Task(self._pool.take())
            view = memoryview(task.buf)
            used = len(carry)
            view[:used] = carry
            got = fill(fd, view[used:], offset, remaining)
            offset += got
            self._stats["read"] += got
            if remaining is not None:
                remaining -= got
            size = used + got
            final = got < len(view) - used or remaining == 0
            cuts, covered = self._chunker.cut(view[:size], final=final, block=block)
            carry = bytes(view[covered:size]) if not final else b""
            if cuts:
                task.segments.append((0, cuts))
                parts.append((task, 0))
                self._submit(task)
            else:
                self._pool.give(task.buf)
            if final:
                return offset

    def _submit_batch(self) -> None:
        if self._batch is not None:
            self._submit(self._batch)
            self._batch = None

    def _submit(self, task: _Task) -> None:
        task.future = self._workers.submit(self._store, task)

    def _store(self, task: _Task) -> list[list[ContentEntry]]:
        try:
            view = memoryview(task.buf)
            store = self._sink.store
            return [
                [store(view[start + off : start + off + n]) for off, n in cuts]
                for start, cuts in task.segments
            ]
        finally:
            self._pool.give(task.buf)

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
            self._record(self._complete(head), head)

    @staticmethod
    def _ready(queued: _Queued) -> bool:
        for part in queued.parts or ():
            if isinstance(part, int):
                continue
            future = part[0].future
            if future is None or not future.done():
                return False
        return True

    def _complete(self, queued: _Queued) -> Node:
        if queued.parts is None:
            return queued.node
        content: list[ContentEntry] = []
        for part in queued.parts:
            if isinstance(part, int):
                entries: Sequence[ContentEntry] = (part,)
            else:
                task, segment = part
                assert task.future is not None
                entries = task.future.result()[segment]
            for e in entries:
                if isinstance(e, int) and content and isinstance(content[-1], int):
                    content[-1] += e
                else:
                    content.append(e)
        return replace(queued.node, content=tuple(content), size=queued.size)

    def _record(self, node: Node, queued: _Queued) -> None:
        stats = self._stats
        if queued.kind is _Kind.OTHER:
            stats["dirs" if node.type is NodeType.DIR else "others"] += 1
        else:
            stats[queued.kind.name.lower()] += 1
            self._files_done += 1
            self._bytes_done += node.size
        for chunk in self._tree_chunker.feed(encode_node(node)):
            self.tree.append(self._sink.store_tree(self._tree_writer, chunk).hex())
        self._meter.update(self._files_done, self._bytes_done, node.path)
