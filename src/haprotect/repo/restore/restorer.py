"""Restoring a snapshot, or some of its paths, into a target directory.

The calling thread streams the tree in order. It creates every directory (so
a directory exists before anything inside it), symlink and other special
node itself, and groups the chunks of regular files into runs: blobs of one
pack that lie close together, read with one ranged request, so a run of many
small files costs one read. The bytes between two blobs of a run (up to
``MAX_GAP``, other files' blobs) are read and dropped: that costs less than
another request, on a disk and on object storage alike. Worker threads do
the rest of a file's work, in parallel and out of order
(:mod:`haprotect.repo.restore.packruns`): a worker fetches a run, verifies each
blob, creates the files the blobs belong to (relative to their directory's
descriptor, with ``O_EXCL`` and ``O_NOFOLLOW``), writes each blob at its
offset with ``pwrite`` and, when the last run of a file is written, sets
the file's size, owner, mode, xattrs and times and closes it. Large files
are written around the page cache (:mod:`haprotect.repo.restore.directwrite`).
Holes are skipped (the file is
truncated to its size at the end), so sparse files stay sparse. Each file
is written under a temporary name and renamed to its own when complete
(:mod:`haprotect.repo.restore.target`); the later names of a hard-linked file are
linked at the end, to a first name that is complete. A directory's
metadata is set once everything is restored, deepest first, so read-only
directories and directory mtimes come out right; also when the restore
fails or is interrupted, once its workers have stopped and the files they
were writing are removed. Owners are restored when running as root, by
name when the name exists here, else by number
(:mod:`haprotect.repo.restore.nodemeta`).

Damage costs only what it touches (:mod:`haprotect.repo.restore.damage`): a chunk
the index does not know, or one that cannot be read or verified, loses its
bytes in the files that use it, and the restore goes on.

With a :class:`~haprotect.repo.restore.options.Share`, the restorer is one of
several processes (:mod:`haprotect.repo.restore.processes`): it writes only the
regular files of its share, and only the primary makes the rest.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import cast

from haprotect.model.snapshot import (
    ContentEntry,
    FileError,
    LostFile,
    LostRange,
    Node,
    NodeType,
    RestoreStats,
)
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.format.config import MiB
from haprotect.repo.format.index import BlobLocation
from haprotect.repo.format.tree import sort_key
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.restore.damage import NOT_INDEXED
from haprotect.repo.restore.nodemeta import make_special
from haprotect.repo.restore.options import RestoreOptions, Share, Team
from haprotect.repo.restore.packruns import RestoredFile, Run, RunWriter
from haprotect.repo.restore.target import Components, Target, next_components

MAX_FILES_PER_RUN = 256
MAX_GAP = 64 * 1024
DIRECT_MIN = 1 * MiB
_DIRECT = getattr(os, "O_DIRECT", 0)

Dirs = list[tuple[Components, Node]]
"""Directories of a restore, in tree order, with their nodes."""


def include_keys(includes: Sequence[str] | None) -> list[tuple[bytes, ...]] | None:
    """The sort keys of the paths a restore is limited to (None: everything)."""
    return None if includes is None else [sort_key(p.strip("/")) for p in includes]


def selected(key: tuple[bytes, ...], includes: Sequence[tuple[bytes, ...]] | None) -> bool:
    """In or below an included path, or one of its ancestors."""
    if includes is None:
        return True
    return any(key[: len(i)] == i or i[: len(key)] == key for i in includes)


class Restorer:
    """Restores a snapshot's tree, or with ``share`` and ``team`` one process's share of it."""

    def __init__(
        self,
        reader: BlobReader,
        snapshot_id: str,
        options: RestoreOptions,
        meter: ProgressMeter,
        *,
        share: Share | None = None,
        team: Team | None = None,
        dirs: Dirs | None = None,
        make_target: Callable[[Path], Target] = Target,
    ) -> None:
        """``dirs``: the directories were made already (by the primary, before forking);
        ``make_target`` makes the way into the target directory."""
        self._make_target = make_target
        self._reader = reader
        self._share = share
        self._team = team
        self._primary = share is None or share.primary
        self._made_dirs = dirs is not None
        self._position = 0
        self._later_links: list[tuple[tuple[Components, str], Components, Node]] = []
        self._snapshot_id = snapshot_id
        self._options = options
        self._meter = meter
        self._owners = options.owners if options.owners is not None else os.geteuid() == 0
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-restore")
        self._slots = threading.BoundedSemaphore(options.workers * 2)
        self._futures: deque[Future[None]] = deque()
        self._done: deque[RestoredFile] = deque()
        self._run: Run | None = None
        self._links: dict[str, tuple[Components, str]] = {}
        self._dirs: Dirs = dirs if dirs is not None else []
        self._errors: list[FileError] = []
        self._lost: list[LostFile] = []
        self._counts = {"files": 0, "dirs": 0, "others": 0, "bytes": 0}
        self._direct = bool(_DIRECT) and options.direct_io and options.sparse
        self._writer: RunWriter | None = None

    def run(
        self, nodes: Iterable[Node], target: Path, includes: Sequence[str] | None
    ) -> RestoreStats:
        wanted = include_keys(includes)
        dest = self._make_target(target)
        writer = self._writer = RunWriter(self._reader, dest, self._options, owners=self._owners)
        others = RestoreStats()
        done = False
        try:
            if not self._made_dirs and self._primary:
                dest.tidy(())
            previous: tuple[bytes, ...] | None = None
            for node in nodes:
                key = parts = next_components(node.path, self._snapshot_id, previous)
                previous = key
                if wanted is not None and (
                    not selected(key, wanted)
                    or (
                        node.type is not NodeType.DIR
                        and not any(key[: len(i)] == i for i in wanted)
                    )
                ):
                    continue
                self._restore(dest, parts, node)
                self._collect()
                dest.trim()
            self._flush_run()
            self._wait_all()
            if self._team is not None and self._primary:
                others = self._team.join(self._meter)
            self._link_later(dest, writer, others)
            done = True
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            try:
                if not done:
                    writer.abandon()
                    if self._team is not None and self._primary:
                        self._team.stop()
                if self._primary:
                    self._finish_dirs(dest, strict=done)
            finally:
                dest.close()
        c = self._counts
        stats = RestoreStats(
            c["files"] + others.files,
            c["dirs"] + others.dirs,
            c["others"] + others.others,
            c["bytes"] + others.bytes_written,
            (*self._errors, *writer.errors, *others.errors),
            (*writer.lost, *self._lost, *others.lost),
            dest.leftovers_removed + others.leftovers_removed,
        )
        if self._team is not None:
            self._team.publish(c["files"], c["bytes"])
        self._meter.finish(stats.files, stats.bytes_written)
        return stats

    def _link_later(self, dest: Target, writer: RunWriter, others: RestoreStats) -> None:
        """Link the later names of hard-linked files, to first names that came out whole."""
        if not self._later_links:
            return
        failed = {e.path for e in (*self._errors, *writer.errors, *others.errors)}
        lost = {f.path: f for f in (*writer.lost, *others.lost)}
        for (existing, first), parts, node in self._later_links:
            if first not in failed:
                if self._guard(node, dest.link, existing, parts):
                    self._counts["files"] += 1
                continue
            damaged = lost.get(first)
            if damaged is not None:
                self._lost.append(LostFile(node.path, damaged.ranges))
                why = "lost data"
            else:
                why = "could not be restored"
            self._errors.append(
                FileError(node.path, f"not linked: a hard link of {first}, which {why}")
            )

    def _finish_dirs(self, dest: Target, *, strict: bool) -> None:
        """Set the directories' metadata, deepest first; ``strict``: raise what is not OSError."""
        for parts, node in reversed(self._dirs):
            try:
                self._guard(node, self._dir_metadata, dest, parts, node)
            except Exception:
                if strict:
                    raise
            dest.trim()

    def _guard(self, node: Node, action: Callable[..., None], *args: object) -> bool:
        try:
            action(*args)
        except OSError as exc:
            self._errors.append(FileError(node.path, exc.strerror or str(exc)))
            return False
        return True

    def _restore(self, dest: Target, parts: Components, node: Node) -> None:
        kind = node.type
        if kind is NodeType.FILE:
            self._guard(node, self._file, dest, parts, node)
        elif not self._primary or kind is NodeType.SOCKET:
            return
        elif kind is NodeType.DIR:
            if not self._made_dirs:
                self._guard(node, partial(dest.make_dir, tidy=True), parts)
                self._dirs.append((parts, node))
            self._counts["dirs"] += 1
        else:
            self._guard(node, self._special, dest, parts, node)

    def _special(self, dest: Target, parts: Components, node: Node) -> None:
        parent, name = dest.dir_fd(parts[:-1]), parts[-1]
        dest.clear(parent, name)
        make_special(parent, name, node, owners=self._owners)
        self._counts["others"] += 1

    def _file(self, dest: Target, parts: Components, node: Node) -> None:
        """Schedule one file: its blobs join runs; a worker creates and finishes it."""
        if node.hardlink is not None:
            first = self._links.get(node.hardlink)
            if first is not None:
                # linked at the end, once its first name is whole
                if self._primary:
                    self._later_links.append((first, parts, node))
                return
            # every process must see the same first names
            self._links[node.hardlink] = (parts, node.path)
        share = self._share
        if share is not None:
            # every process must see the same positions, whatever happens to
            # the file in the process that writes it
            mine = share.owns(self._position)
            self._position += node.size
            if not mine:
                return
        dir_parts = parts[:-1]
        parent = dest.pin(dir_parts)
        opened = RestoredFile(node, dir_parts, parent, parts[-1])
        opened.direct = self._direct and node.size >= DIRECT_MIN
        run = self._run
        if run is not None and len(run.files) >= MAX_FILES_PER_RUN:
            self._flush_run()
        content: Sequence[ContentEntry] = node.content
        lookup = self._reader.index.lookup
        found = [lookup(entry) for entry in content if not isinstance(entry, int)]
        if None in found:
            content, found = self._around_unindexed(opened, found)
        blobs = iter(cast("list[BlobLocation]", found))
        offset = 0
        for entry in content:
            if isinstance(entry, int):
                opened.holes.append((offset, entry))
                if opened.direct:
                    self._writing.direct.hole(opened, offset, entry)
                offset += entry
                continue
            location = next(blobs)
            self._add_blob(opened, entry, location, offset)
            offset += location.raw_length
            opened.written += location.raw_length
            opened.data_end = offset
        opened.size = offset
        run = self._run
        if run is None or not run.files or run.files[-1] is not opened:
            if run is None:
                run = self._run = Run(None, 0, 0)
            with opened.lock:
                opened.pending += 1
            run.files.append(opened)
        with opened.lock:
            # the current run is not submitted yet, so this never drops to zero
            opened.pending -= 1

    def _around_unindexed(
        self, opened: RestoredFile, found: list[BlobLocation | None]
    ) -> tuple[list[ContentEntry], list[BlobLocation | None]]:
        """The content of a file with chunks the index does not know, their span made a gap.

        Without its chunks' lengths, the span from the first unknown chunk
        to the last is lost (with whatever lies between); the chunks before
        it are placed from the start, those after it from the end.
        """
        node = opened.node
        chunks = [i for i, e in enumerate(node.content) if not isinstance(e, int)]
        missing = [i for i, location in zip(chunks, found, strict=True) if location is None]
        first, last = missing[0], missing[-1]
        located = dict(zip(chunks, found, strict=True))

        def length(i: int) -> int:
            entry, location = node.content[i], located.get(i)
            return entry if isinstance(entry, int) else cast(BlobLocation, location).raw_length

        start = sum(length(i) for i in range(first))
        tail = sum(length(i) for i in range(last + 1, len(node.content)))
        end = max(start, node.size - tail)
        chunk = node.content[first]
        assert isinstance(chunk, bytes)
        count = sum(1 for i in chunks if first <= i <= last)
        self._writing.lose(opened, LostRange(start, end, chunk.hex(), None, NOT_INDEXED, count))
        content = [*node.content[:first], end - start, *node.content[last + 1 :]]
        kept = [located[i] for i in chunks if not first <= i <= last]
        return content, kept

    def _add_blob(
        self, opened: RestoredFile, chunk_id: bytes, location: BlobLocation, at: int
    ) -> None:
        run = self._run
        if run is not None and run.pack is None:
            run.pack, run.start, run.end = location.pack, location.offset, location.offset
        elif (
            run is None
            or run.pack is None
            or run.pack.id != location.pack.id
            or not 0 <= location.offset - run.end <= MAX_GAP
            or location.offset + location.length - run.start > self._options.max_read
        ):
            self._flush_run()
            run = self._run = Run(location.pack, location.offset, location.offset)
        run.end = location.offset + location.length
        run.blobs.append((chunk_id, location, opened, at))
        if not run.files or run.files[-1] is not opened:
            with opened.lock:
                opened.pending += 1
            run.files.append(opened)

    def _flush_run(self) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        self._slots.acquire()
        try:
            self._futures.append(self._pool.submit(self._fetch, run))
        except BaseException:
            self._slots.release()
            raise

    def _collect(self) -> None:
        """Count finished files and raise the first failure of a worker."""
        futures = self._futures
        while futures and futures[0].done():
            futures.popleft().result()
        done = self._done
        if not done:
            return
        counts = self._counts
        path = ""
        while done:
            opened = done.popleft()
            counts["files"] += 1
            counts["bytes"] += opened.written
            path = opened.node.path
        files, nbytes = counts["files"], counts["bytes"]
        if self._team is not None:
            self._team.publish(files, nbytes)
            files, nbytes = self._team.totals()
        self._meter.update(files, nbytes, path)

    def _wait_all(self) -> None:
        while self._futures:
            self._futures.popleft().result()
        self._collect()

    def _fetch(self, run: Run) -> None:
        """Worker: read one run, write its blobs, finish the files it completes."""
        writer = self._writing
        try:
            if run.pack is not None:
                writer.write(run)
        except BaseException:
            for opened in run.files:
                opened.failed = True
            raise
        finally:
            try:
                for opened in run.files:
                    with opened.lock:
                        opened.pending -= 1
                        last = opened.pending == 0
                    if last and writer.finish(opened):
                        self._done.append(opened)
            finally:
                self._slots.release()

    def _dir_metadata(self, dest: Target, parts: Components, node: Node) -> None:
        self._writing.apply(dest.dir_fd(parts), node)

    @property
    def _writing(self) -> RunWriter:
        """The run writer of the restore that runs."""
        assert self._writer is not None
        return self._writer
