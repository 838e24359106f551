"""The backup pipeline: walk, read, chunk, store, record the tree.

The walk runs in a thread of its own, ahead of the caller's
(:class:`~haprotect.repo.process.lookahead.Lookahead`). The caller takes the entries
in canonical order, asks the files cache about each file and hands each file
that changed to a worker thread, with a pooled buffer: the worker reads it,
cuts it into chunks, and hashes, deduplicates, compresses, encrypts and packs
them (:mod:`haprotect.repo.backup.fileworker`,
:class:`~haprotect.repo.blobs.blobsink.BlobSink`); upload threads store finished
packs (:class:`~haprotect.repo.blobs.uploader.Uploader`). A large file is one task,
read buffer by buffer, so the workers never wait for the caller's thread to
read for them. Small files are read back to back into one buffer and handed
over as one task, so their per-file cost is a few system calls and a
dictionary lookup; once a backup has handed out a few such batches, it
forks processes that read, cut and compress them in parallel
(:class:`~haprotect.repo.backup.fileworker.SmallFileReader`), while the workers
encrypt and pack what those leave.

Nodes are recorded in walk order: a node waits in a bounded queue until the
chunks of its file are stored, then joins the tree stream. When every node is
recorded the tree chunks, the last packs and the index are stored, and only
then the snapshot.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from haprotect.model.snapshot import BackupStats, ContentEntry, FileError, Node, NodeType
from haprotect.repo.backup.dispatch import Dispatcher, Kind, Queued, group_start
from haprotect.repo.backup.files_cache import FilesCache
from haprotect.repo.backup.fileworker import merged
from haprotect.repo.backup.options import BackupOptions
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.walker import Entry
from haprotect.repo.blobs.chunker import StreamChunker
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.format.tree import decode_node, encode_node, encode_xattrs
from haprotect.repo.process.lookahead import Lookahead
from haprotect.repo.process.switchinterval import short_switch_interval
from haprotect.repo.progress import ProgressMeter

MAX_QUEUED_NODES = 4096
_NO_XATTRS_TAIL = b"}\n"


def tail_of(xattrs: tuple[tuple[str, bytes], ...]) -> bytes:
    """The end of a file's record after its content: xattrs and the closing brace."""
    return (encode_xattrs(xattrs) + "}\n").encode() if xattrs else _NO_XATTRS_TAIL


_STAT_OF_KIND = {Kind.NEW: "new", Kind.CHANGED: "changed", Kind.UNCHANGED: "unchanged"}


class _Unreadable(Exception):
    """A file a worker could not read (its message is the error's)."""


class Archiver:
    """One backup's pipeline, from walked entries to stored chunks and trees.

    Takes the entries in canonical order, reuses the parent's content through
    the files cache, hands changed files to the workers and records each node;
    :meth:`stats` says what the run added.
    """

    def __init__(
        self,
        key: MasterKey,
        config: RepoConfig,
        index: Index,
        uploader: Uploader,
        options: BackupOptions,
        meter: ProgressMeter,
        errors: list[FileError] | None = None,
        parts: BackupParts | None = None,
    ) -> None:
        """``errors`` collects the files that could not be backed up (the walk's too);
        ``parts``: what the pipeline is made of (the production's by default)."""
        parts = parts or BackupParts()
        self._config = config
        self._options = options
        self._meter = meter
        self._tree_chunker = StreamChunker(config.chunker, key.chunker_seed)
        self._sink = parts.sink(
            key,
            index,
            uploader,
            pack_size=config.pack_size,
            max_blob=max(config.chunker.max_size, config.chunker.tree_max_size),
            level=config.compression_level,
        )
        self._tree_writer = self._sink.new_tree_writer()
        self._uploader = uploader
        self._queue: deque[Queued] = deque()
        self._dispatcher = Dispatcher(config, key, index, self._sink, options, self._queue, parts)
        self._links: dict[str, Queued] = {}
        self.tree: list[str] = []
        self.errors: list[FileError] = [] if errors is None else errors
        self._stats = {k: 0 for k in ("new", "changed", "unchanged", "dirs", "others", "read")}
        self._files_done = 0
        self._bytes_done = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(FileError(path, message))

    def run(self, entries: Lookahead[Entry], cache: FilesCache) -> None:
        with short_switch_interval():
            self._run(entries, cache)

    def _run(self, entries: Lookahead[Entry], cache: FilesCache) -> None:
        try:
            for batch in entries.batches():
                self._batch_of_entries(batch, cache)
            self._dispatcher.submit_batch()
            while self._queue:
                self._drain(wait=True)
            for chunk in self._tree_chunker.finish():
                self.tree.append(self._sink.store_tree(self._tree_writer, chunk).hex())
        except BaseException:
            try:
                self._dispatcher.close(failed=True)
            finally:
                self._sink.close(self._tree_writer)
            raise
        self._dispatcher.close(failed=False)
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
            if cache.exhausted:
                handed = self._new_small_files(batch, i)
                if handed:
                    i += handed
                    continue
            elif runs and not self._queue:
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
                queue.append(Queued(None, Kind.UNCHANGED, None, size, record, entry))
            else:
                parent = decode_node(record) if record is not None else None
                self._file(entry, parent, cache)
        else:
            if not cache.exhausted:
                cache.lookup_record(entry.key)  # the merge goes past its record
            queue.append(Queued(entry.node, Kind.OTHER))
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
            self._queue.append(Queued(None, Kind.UNCHANGED, None, size, record, entry))
            return
        kind = Kind.CHANGED if parent is not None else Kind.NEW
        hardlink = entry.hardlink
        first = self._links.get(hardlink) if hardlink else None
        if first is not None:
            # a file's size is known when a worker has read it
            self._queue.append(
                Queued(None, kind, first.pieces, first.size, None, entry, first.sized, link=True)
            )
            return
        try:
            queued = self._dispatcher.file(entry, kind)
        except OSError as exc:
            self.error(entry.path, exc.strerror or str(exc))
            return
        if queued is None:
            return
        self._queue.append(queued)
        if hardlink:
            self._links[hardlink] = queued

    def _new_small_files(self, batch: list[Entry], start: int) -> int:
        """Hand out the new small files from ``batch[start]`` on (no parent left); how many."""
        taken = self._dispatcher.new_small_files(batch, start)
        if taken:
            self._uploader.check()
            self._drain(wait=len(self._queue) > MAX_QUEUED_NODES)
            self._uploader.flush_index()
        return taken

    def _drain(self, *, wait: bool) -> None:
        while self._queue:
            head = self._queue[0]
            if not self._ready(head):
                if not wait:
                    return
                if self._dispatcher.holds(head):
                    self._dispatcher.submit_batch()
                wait = False
            self._queue.popleft()
            if head.group is not None:
                self._record_group(head)
                continue
            try:
                record = self._complete(head)
            except _Unreadable as exc:
                assert head.entry is not None
                self.error(head.entry.path, str(exc))
                continue
            self._record(record, head)

    @staticmethod
    def _ready(queued: Queued) -> bool:
        for piece in queued.pieces or ():
            if not isinstance(piece, int) and not piece[0].done:
                return False
        return True

    def _complete(self, queued: Queued) -> bytes:
        """The tree record of a queued node, once its chunks are stored."""
        if queued.record is not None:
            return queued.record
        if queued.node is not None:
            return encode_node(queued.node)
        assert queued.entry is not None and queued.pieces is not None
        content: list[ContentEntry] = []
        for piece in queued.pieces:
            if isinstance(piece, int):
                content.append(piece)
                continue
            task, segment = piece
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

    def _record(self, record: bytes, queued: Queued) -> None:
        stats = self._stats
        node = queued.node
        if queued.kind is Kind.OTHER:
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

    def _record_group(self, queued: Queued) -> None:
        """Record a group of new small files (one failing to be read is an error of its own)."""
        assert queued.group is not None
        task, first = group_start(queued)
        results = task.results
        if results is None:
            assert task.future is not None
            results = task.future.result()  # raises what the worker raised
        records: list[bytes] = []
        size = read = 0
        for entry, (content, got, nread, failed, record) in zip(
            queued.group, islice(results, first, None), strict=False
        ):
            if failed is not None:
                self.error(entry.path, failed)
                continue
            records.append(record if record is not None else entry.record(got, merged(content)))
            size += got
            read += nread
        count = len(records)
        stats = self._stats
        stats["new"] += count
        stats["read"] += read
        self._files_done += count
        self._bytes_done += size
        if records:
            self._feed_tree(b"".join(records))
        if self._meter.active:
            self._meter.update(self._files_done, self._bytes_done, queued.group[-1].path)

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
