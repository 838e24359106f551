"""A restore's workers' side: read a run of a pack, verify its blobs, write them out.

The restorer (:mod:`haprotect.repo.restorer`) groups the blobs of the files
it restores into runs (:class:`Run`): blobs of one pack that lie close
together. A worker reads a run with one ranged request into a buffer of its
own, verifies and decompresses each blob, and writes it at its offset in
its file (:class:`RestoredFile`), creating the file on its first blob;
large files go around the page cache, in extents of consecutive chunks
(:mod:`haprotect.repo.directwrite`). When the last run of a file is written
the worker sets its size, owner, mode, xattrs and times and closes it.
"""

from __future__ import annotations

import mmap
import os
import threading
from dataclasses import dataclass, field

from haprotect.model.snapshot import FileError, Node
from haprotect.repo.blobreader import BlobReader
from haprotect.repo.config import MiB
from haprotect.repo.directwrite import BLOCK, DirectWriter, PartialBlock, write_all
from haprotect.repo.index import BlobLocation
from haprotect.repo.nodemeta import apply_metadata
from haprotect.repo.pack import PackInfo
from haprotect.repo.restoreparts import RestoreOptions
from haprotect.repo.target import Components, Target

_ZEROS = bytes(1 * MiB)


@dataclass(slots=True, eq=False)
class RestoredFile:
    """A regular file being restored; shared by the runs that hold its blobs."""

    node: Node
    dir_parts: Components
    parent: int
    name: bytes
    size: int = 0
    data_end: int = 0
    written: int = 0
    pending: int = 1
    fd: int = -1
    failed: bool = False
    direct: bool = False
    holes: list[tuple[int, int]] = field(default_factory=list)
    partial: dict[int, PartialBlock] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(slots=True, eq=False)
class Run:
    """Blobs of one pack, in order and close together, for one or several files.

    One ranged read covers them all (and the gaps between them).

    ``files`` are the files whose pending count this run holds: those with
    blobs in it, and files without any data that it creates.
    """

    pack: PackInfo | None
    start: int
    end: int
    blobs: list[tuple[bytes, BlobLocation, RestoredFile, int]] = field(default_factory=list)
    files: list[RestoredFile] = field(default_factory=list)


class RunWriter:
    """Writes runs into ``dest``, from any number of worker threads."""

    def __init__(
        self, reader: BlobReader, dest: Target, options: RestoreOptions, *, owners: bool
    ) -> None:
        self._reader = reader
        self._dest = dest
        self._options = options
        self._owners = owners
        self._reads = threading.local()
        self.direct: DirectWriter[RestoredFile] = DirectWriter(
            self._ensure_open, self._write_failed
        )
        """Where large files' blobs are gathered into direct writes (and their holes noted)."""
        self.errors: list[FileError] = []
        """The files that could not be written."""

    def write(self, run: Run) -> None:
        """Read ``run``, verify its blobs and write each into its file."""
        assert run.pack is not None
        reader = self._reader
        data = reader.read_range_into(
            run.pack, run.start, run.end - run.start, self._read_buffer(run.end - run.start)
        )
        start = run.start
        direct = self.direct
        try:
            for chunk_id, location, opened, offset in run.blobs:
                rel = location.offset - start
                plain = reader.open(location, chunk_id, data[rel : rel + location.length])
                if opened.failed:
                    continue
                if opened.direct:
                    direct.append(opened, plain, offset)
                    continue
                try:
                    fd = opened.fd if opened.fd >= 0 else self._ensure_open(opened)
                    write_all(fd, plain, offset)
                except OSError as exc:
                    self._write_failed(opened, exc)
            direct.flush_extent()
        finally:
            direct.discard_extent()

    def finish(self, opened: RestoredFile) -> bool:
        """Create the file if it had no data, set its size and metadata, close it; True if whole."""
        try:
            if not opened.failed:
                if opened.fd < 0:
                    opened.fd = self._create(opened)
                self._file_metadata(opened)
        except OSError as exc:
            self.errors.append(FileError(opened.node.path, exc.strerror or str(exc)))
        finally:
            if opened.fd >= 0:
                os.close(opened.fd)
                opened.fd = -1
            self._dest.unpin(opened.dir_parts)
        return not opened.failed

    def apply(self, fd: int, node: Node) -> None:
        """Set a node's owner (as root), mode, xattrs and times through ``fd``."""
        apply_metadata(fd, node, owners=self._owners, xattrs=self._options.xattrs)

    def _write_failed(self, opened: RestoredFile, exc: OSError) -> None:
        opened.failed = True
        self.errors.append(FileError(opened.node.path, exc.strerror or str(exc)))

    def _ensure_open(self, opened: RestoredFile) -> int:
        with opened.lock:
            if opened.fd < 0:
                opened.fd = self._create(opened)
            return opened.fd

    def _create(self, opened: RestoredFile) -> int:
        return self._dest.create_in(opened.parent, opened.name, direct=opened.direct)

    def _read_buffer(self, size: int) -> mmap.mmap:
        """This thread's buffer for reading ``size`` bytes of a pack (and two pages)."""
        local = self._reads
        buf: mmap.mmap | None = getattr(local, "read", None)
        need = size + 2 * BLOCK
        if buf is None or len(buf) < need:
            buf = local.read = mmap.mmap(-1, max(need, self._options.max_read + 2 * BLOCK))
        return buf

    def _file_metadata(self, opened: RestoredFile) -> None:
        fd = opened.fd
        if not self._options.sparse:
            for offset, length in opened.holes:
                for start in range(offset, offset + length, len(_ZEROS)):
                    write_all(fd, _ZEROS[: min(len(_ZEROS), offset + length - start)], start)
        elif opened.direct:
            self.direct.flush(opened)
            os.ftruncate(fd, opened.size)
        elif opened.size != opened.data_end:
            os.ftruncate(fd, opened.size)
        self.apply(fd, opened.node)
