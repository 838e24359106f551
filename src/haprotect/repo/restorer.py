"""Restoring a snapshot, or some of its paths, into a target directory.

The tree is streamed in order. For each file the chunks are grouped into
runs (neighbouring blobs of one pack, read with one ranged request); worker
threads fetch, verify and write each run at its offsets with ``pwrite``, so
files are written in parallel and out of order. Holes are skipped (the file
is created empty and truncated to its size at the end), so sparse files
stay sparse. A file's metadata is set once its runs are written; a
directory's once everything below it is (deepest first), so read-only
directories and directory mtimes come out right. Owners are restored when
running as root, by name when the name exists here, else by number.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from haprotect.model.snapshot import FileError, Node, NodeType, RestoreStats
from haprotect.repo.blobreader import BlobReader
from haprotect.repo.config import MiB
from haprotect.repo.errors import IntegrityError
from haprotect.repo.index import BlobLocation
from haprotect.repo.pack import PackInfo
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.target import Components, Target, components
from haprotect.repo.tree import sort_key

MAX_OPEN_FILES = 256
_ZEROS = bytes(1 * MiB)


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    workers: int = 8
    sparse: bool = True
    owners: bool | None = None
    xattrs: bool = True
    max_read: int = 8 * MiB


@dataclass(slots=True)
class _Run:
    """Neighbouring blobs of one pack, for one or several files: one ranged read."""

    pack: PackInfo
    start: int
    end: int
    blobs: list[tuple[bytes, BlobLocation, int, int]] = field(default_factory=list)
    future: Future[None] | None = None


@dataclass(slots=True)
class _OpenFile:
    node: Node
    fd: int
    size: int = 0
    written: int = 0
    holes: list[tuple[int, int]] = field(default_factory=list)
    runs: list[_Run] = field(default_factory=list)


@lru_cache(maxsize=1024)
def _uid(user: str | None, uid: int) -> int:
    try:
        return pwd.getpwnam(user).pw_uid if user else uid
    except KeyError:
        return uid


@lru_cache(maxsize=1024)
def _gid(group: str | None, gid: int) -> int:
    try:
        return grp.getgrnam(group).gr_gid if group else gid
    except KeyError:
        return gid


def selected(key: tuple[bytes, ...], includes: Sequence[tuple[bytes, ...]] | None) -> bool:
    """In or below an included path, or one of its ancestors."""
    if includes is None:
        return True
    return any(key[: len(i)] == i or i[: len(key)] == key for i in includes)


class Restorer:
    def __init__(
        self, reader: BlobReader, snapshot_id: str, options: RestoreOptions, meter: ProgressMeter
    ) -> None:
        self._reader = reader
        self._snapshot_id = snapshot_id
        self._options = options
        self._meter = meter
        self._owners = options.owners if options.owners is not None else os.geteuid() == 0
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="haprotect-restore")
        self._slots = threading.BoundedSemaphore(options.workers * 4)
        self._open: deque[_OpenFile] = deque()
        self._run: _Run | None = None
        self._links: dict[str, Components] = {}
        self._dirs: list[tuple[Components, Node]] = []
        self._errors: list[FileError] = []
        self._counts = {"files": 0, "dirs": 0, "others": 0, "bytes": 0}

    def run(
        self, nodes: Iterable[Node], target: Path, includes: Sequence[str] | None
    ) -> RestoreStats:
        wanted = None if includes is None else [sort_key(p.strip("/")) for p in includes]
        dest = Target(target)
        try:
            previous: tuple[bytes, ...] | None = None
            for node in nodes:
                parts = components(node.path, self._snapshot_id)
                key = sort_key(node.path)
                if previous is not None and key <= previous:
                    raise IntegrityError(
                        f"the tree of snapshot {self._snapshot_id[:8]} is out of order at "
                        f"{node.path!r}"
                    )
                previous = key
                if not selected(key, wanted):
                    continue
                if (
                    wanted is not None
                    and node.type is not NodeType.DIR
                    and not any(key[: len(i)] == i for i in wanted)
                ):
                    continue
                self._restore(dest, parts, node)
                self._finish_files(wait=len(self._open) > MAX_OPEN_FILES)
                dest.trim()
            self._finish_files(wait=True, everything=True)
            for parts, node in reversed(self._dirs):
                self._guard(node, self._dir_metadata, dest, parts, node)
                dest.trim()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            for opened in self._open:
                os.close(opened.fd)
            dest.close()
        c = self._counts
        self._meter.finish(c["files"], c["bytes"])
        return RestoreStats(c["files"], c["dirs"], c["others"], c["bytes"], tuple(self._errors))

    def _guard(self, node: Node, action: Callable[..., None], *args: object) -> None:
        try:
            action(*args)
        except OSError as exc:
            self._errors.append(FileError(node.path, exc.strerror or str(exc)))

    def _restore(self, dest: Target, parts: Components, node: Node) -> None:
        kind = node.type
        if kind is NodeType.DIR:
            self._guard(node, dest.make_dir, parts)
            self._dirs.append((parts, node))
            self._counts["dirs"] += 1
        elif kind is NodeType.FILE:
            self._guard(node, self._file, dest, parts, node)
        elif kind is NodeType.SOCKET:
            return
        else:
            self._guard(node, self._special, dest, parts, node)

    def _special(self, dest: Target, parts: Components, node: Node) -> None:
        parent, name = dest.dir_fd(parts[:-1]), parts[-1]
        dest.clear(parent, name)
        if node.type is NodeType.SYMLINK:
            os.symlink(os.fsencode(node.target or ""), name, dir_fd=parent)
        elif node.type is NodeType.FIFO:
            os.mkfifo(name, 0o600, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if node.type is NodeType.CHAR else stat.S_IFBLK
            os.mknod(name, 0o600 | kind, node.rdev, dir_fd=parent)
        if self._owners:
            uid, gid = _uid(node.user, node.uid), _gid(node.group, node.gid)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        if node.type is not NodeType.SYMLINK:
            os.chmod(name, node.mode, dir_fd=parent)
        ns = (node.mtime_ns, node.mtime_ns)
        os.utime(name, ns=ns, dir_fd=parent, follow_symlinks=False)
        self._counts["others"] += 1

    def _file(self, dest: Target, parts: Components, node: Node) -> None:
        if node.hardlink is not None and node.hardlink in self._links:
            dest.link(self._links[node.hardlink], parts)
            self._counts["files"] += 1
            return
        fd = dest.create_file(parts)
        opened = _OpenFile(node, fd)
        self._open.append(opened)
        if node.hardlink is not None:
            self._links[node.hardlink] = parts
        offset = 0
        for entry in node.content:
            if isinstance(entry, int):
                opened.holes.append((offset, entry))
                offset += entry
                continue
            location = self._reader.locate(entry, node.path)
            self._add_blob(opened, entry, location, offset)
            offset += location.raw_length
            opened.written += location.raw_length
        opened.size = offset

    def _add_blob(
        self, opened: _OpenFile, chunk_id: bytes, location: BlobLocation, at: int
    ) -> None:
        run = self._run
        if (
            run is None
            or run.pack.id != location.pack.id
            or run.end != location.offset
            or run.end - run.start + location.length > self._options.max_read
        ):
            self._flush_run()
            run = self._run = _Run(location.pack, location.offset, location.offset)
        run.end += location.length
        run.blobs.append((chunk_id, location, opened.fd, at))
        if not opened.runs or opened.runs[-1] is not run:
            opened.runs.append(run)

    def _flush_run(self) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        self._slots.acquire()
        try:
            run.future = self._pool.submit(self._fetch, run)
        except BaseException:
            self._slots.release()
            raise

    def _fetch(self, run: _Run) -> None:
        try:
            reader = self._reader
            data = memoryview(reader.read_range(run.pack, run.start, run.end - run.start))
            for chunk_id, location, fd, offset in run.blobs:
                rel = location.offset - run.start
                plain = reader.open(location, chunk_id, data[rel : rel + location.length])
                _write_all(fd, plain, offset)
        finally:
            self._slots.release()

    def _finish_files(self, *, wait: bool, everything: bool = False) -> None:
        while self._open:
            head = self._open[0]
            if any(r.future is None for r in head.runs):
                if not wait:
                    return
                self._flush_run()
            if not wait and not all(r.future is not None and r.future.done() for r in head.runs):
                return
            self._open.popleft()
            try:
                for run in head.runs:
                    assert run.future is not None
                    run.future.result()
                self._guard(head.node, self._file_metadata, head)
            finally:
                os.close(head.fd)
            self._counts["files"] += 1
            self._counts["bytes"] += head.written
            self._meter.update(self._counts["files"], self._counts["bytes"], head.node.path)
            wait = everything

    def _file_metadata(self, opened: _OpenFile) -> None:
        node, fd = opened.node, opened.fd
        if not self._options.sparse:
            for offset, length in opened.holes:
                for start in range(offset, offset + length, len(_ZEROS)):
                    _write_all(fd, _ZEROS[: min(len(_ZEROS), offset + length - start)], start)
        os.ftruncate(fd, opened.size)
        self._apply(fd, node)

    def _apply(self, fd: int, node: Node) -> None:
        if self._owners:
            os.fchown(fd, _uid(node.user, node.uid), _gid(node.group, node.gid))
        os.fchmod(fd, node.mode)
        if self._options.xattrs:
            for name, value in node.xattrs:
                try:
                    os.setxattr(fd, name, value)
                except OSError:
                    continue
        os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))

    def _dir_metadata(self, dest: Target, parts: Components, node: Node) -> None:
        self._apply(dest.dir_fd(parts), node)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
