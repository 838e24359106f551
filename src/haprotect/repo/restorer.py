"""Restoring a snapshot, or some of its paths, into a target directory.

The calling thread streams the tree in order. It creates every directory (so
a directory exists before anything inside it), symlink and other special
node itself, and groups the chunks of regular files into runs: blobs of one
pack that lie close together, read with one ranged request, so a run of many
small files costs one read. The bytes between two blobs of a run (up to
``MAX_GAP``, other files' blobs) are read and dropped: that costs less than
another request, on a disk and on object storage alike. Worker threads do
the rest of a file's work, in parallel and out of order
(:mod:`haprotect.repo.runwriter`): a worker fetches a run, verifies each
blob, creates the files the blobs belong to (relative to their directory's
descriptor, with ``O_EXCL`` and ``O_NOFOLLOW``), writes each blob at its
offset with ``pwrite`` and, when the last run of a file is written, sets
the file's size, owner, mode, xattrs and times and closes it. Large files
are written around the page cache (:mod:`haprotect.repo.directwrite`).
Holes are skipped (the file is
truncated to its size at the end), so sparse files stay sparse. A
directory's metadata is set once everything is restored, deepest first, so
read-only directories and directory mtimes come out right. Owners are
restored when running as root, by name when the name exists here, else by
number (:mod:`haprotect.repo.nodemeta`).

With a :class:`~haprotect.repo.restoreparts.Part`, the restorer is one of
several processes (:mod:`haprotect.repo.restoreprocs`): it writes only the
regular files of its share, and only the primary makes the rest.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from haprotect.model.snapshot import FileError, Node, NodeType, RestoreStats
from haprotect.repo.blobreader import BlobReader
from haprotect.repo.config import MiB
from haprotect.repo.index import BlobLocation
from haprotect.repo.nodemeta import make_special
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.restoreparts import Part, RestoreOptions, Team
from haprotect.repo.runwriter import RestoredFile, Run, RunWriter
from haprotect.repo.target import Components, Target, next_components
from haprotect.repo.tree import sort_key

MAX_FILES_PER_RUN = 256
MAX_GAP = 64 * 1024
DIRECT_MIN = 1 * MiB
_ZEROS = bytes(1 * MiB)
_DIRECT = getattr(os, "O_DIRECT", 0)


def include_keys(includes: Sequence[str] | None) -> list[tuple[bytes, ...]] | None:
    """The sort keys of the paths a restore is limited to (None: everything)."""
    return None if includes is None else [sort_key(p.strip("/")) for p in includes]


def selected(key: tuple[bytes, ...], includes: Sequence[tuple[bytes, ...]] | None) -> bool:
    """In or below an included path, or one of its ancestors."""
    if includes is None:
        return True
    return any(key[: len(i)] == i or i[: len(key)] == key for i in includes)


class Restorer:
    """Restores a snapshot's tree, or with ``part`` and ``team`` one process's part of it."""

    def __init__(
        self,
        reader: BlobReader,
        snapshot_id: str,
        options: RestoreOptions,
        meter: ProgressMeter,
        *,
        part: Part | None = None,
        team: Team | None = None,
    ) -> None:
        self._reader = reader
        self._part = part
        self._team = team
        self._primary = part is None or part.primary
        self._position = 0
        self._later_links: list[tuple[Components, Components, Node]] = []
        self._snapshot_id = snapshot_id
        self._options = options
        self._meter = meter
        self._owners = options.owners if options.owners is not None else os.geteuid() == 0
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-restore")
        self._slots = threading.BoundedSemaphore(options.workers * 2)
        self._futures: deque[Future[None]] = deque()
        self._done: deque[RestoredFile] = deque()
        self._run: Run | None = None
        self._links: dict[str, Components] = {}
        self._dirs: list[tuple[Components, Node]] = []
        self._errors: list[FileError] = []
        self._counts = {"files": 0, "dirs": 0, "others": 0, "bytes": 0}
        self._direct = bool(_DIRECT) and options.direct_io and options.sparse
        self._writer: RunWriter | None = None

    def run(
        self, nodes: Iterable[Node], target: Path, includes: Sequence[str] | None
    ) -> RestoreStats:
        wanted = include_keys(includes)
        dest = Target(target)
        writer = self._writer = RunWriter(self._reader, dest, self._options, owners=self._owners)
        try:
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
            others = RestoreStats()
            if self._team is not None and self._primary:
                others = self._team.join(self._meter)
                for existing, parts, node in self._later_links:
                    if self._guard(node, dest.link, existing, parts):
                        self._counts["files"] += 1
            for parts, node in reversed(self._dirs):
                self._guard(node, self._dir_metadata, dest, parts, node)
                dest.trim()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            dest.close()
        c = self._counts
        stats = RestoreStats(
            c["files"] + others.files,
            c["dirs"] + others.dirs,
            c["others"] + others.others,
            c["bytes"] + others.bytes_written,
            (*self._errors, *writer.errors, *others.errors),
        )
        if self._team is not None:
            self._team.publish(c["files"], c["bytes"])
        self._meter.finish(stats.files, stats.bytes_written)
        return stats

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
            self._guard(node, dest.make_dir, parts)
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
        part = self._part
        if node.hardlink is not None and node.hardlink in self._links:
            if part is not None:
                # its first name may be another process's, not written yet
                if part.primary:
                    self._later_links.append((self._links[node.hardlink], parts, node))
                return
            dest.link(self._links[node.hardlink], parts)
            self._counts["files"] += 1
            return
        if part is not None:
            # every process must see the same positions and first names,
            # whatever happens to the file in the process that writes it
            mine = part.owns(self._position)
            self._position += node.size
            if node.hardlink is not None:
                self._links[node.hardlink] = parts
            if not mine:
                return
        dir_parts = parts[:-1]
        parent = dest.pin(dir_parts)
        opened = RestoredFile(node, dir_parts, parent, parts[-1])
        opened.direct = self._direct and node.size >= DIRECT_MIN
        if node.hardlink is not None:
            # later links need the file to exist, so this one is created now
            try:
                opened.fd = dest.create_in(parent, opened.name, direct=opened.direct)
            except OSError:
                dest.unpin(dir_parts)
                raise
            self._links[node.hardlink] = parts
        run = self._run
        if run is not None and len(run.files) >= MAX_FILES_PER_RUN:
            self._flush_run()
        offset = 0
        for entry in node.content:
            if isinstance(entry, int):
                opened.holes.append((offset, entry))
                if opened.direct:
                    self._writing.direct.hole(opened, offset, entry)
                offset += entry
                continue
            location = self._reader.locate(entry, node.path)
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
