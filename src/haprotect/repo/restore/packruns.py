"""A restore's workers' side: read a run of a pack, verify its blobs, write them out.

The restorer (:mod:`haprotect.repo.restore.restorer`) groups the blobs of the files
it restores into runs (:class:`Run`): blobs of one pack that lie close
together. A worker reads a run with one ranged request into a buffer of its
own, verifies and decompresses each blob, and writes it at its offset in
its file (:class:`RestoredFile`), creating the file on its first blob;
large files go around the page cache, in extents of consecutive chunks
(:mod:`haprotect.repo.restore.directwrite`). When the last run of a file is written
the worker sets its size, owner, mode, xattrs and times, renames it from
its temporary name to its own (:meth:`~haprotect.repo.restore.target.Target.place`)
and closes it.

A blob that cannot be read (its pack missing or cut short) or fails
verification loses only its bytes (:mod:`haprotect.repo.restore.damage`): the
rest of the run is written, and its file is finished with the range
zeroed under its damaged name.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from dataclasses import dataclass, field

from haprotect.model.snapshot import FileError, LostFile, LostRange, Node
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.config import MiB
from haprotect.repo.format.index import BlobLocation
from haprotect.repo.format.pack import PackInfo
from haprotect.repo.restore.damage import (
    PACK_MISSING,
    PACK_TRUNCATED,
    damaged_name,
    file_error,
    lost,
    lost_file,
    reason_of,
)
from haprotect.repo.restore.directwrite import BLOCK, DirectWriter, PartialBlock, write_all
from haprotect.repo.restore.nodemeta import apply_metadata
from haprotect.repo.restore.options import RestoreOptions
from haprotect.repo.restore.target import Components, Target
from haprotect.storage.base import BlobNotFound, PermanentStorageError

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
    temp: bytes = b""
    """Its name in ``parent`` until it is complete (empty before it is created and after)."""
    failed: bool = False
    direct: bool = False
    holes: list[tuple[int, int]] = field(default_factory=list)
    lost: list[LostRange] = field(default_factory=list)
    """The ranges that could not be read back (guarded by ``lock``)."""
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
        """The files that could not be written, or lost data."""
        self.lost: list[LostFile] = []
        """The files that lost data, with the ranges."""
        self._open: set[RestoredFile] = set()

    def write(self, run: Run) -> None:
        """Read ``run``, verify its blobs and write each into its file.

        A blob that cannot be read or verified is recorded as lost in its file.
        """
        pack = run.pack
        assert pack is not None
        reader = self._reader
        try:
            data = reader.read_available_into(
                pack, run.start, run.end - run.start, self._read_buffer(run.end - run.start)
            )
        except (BlobNotFound, PermanentStorageError) as exc:
            why = PACK_MISSING if isinstance(exc, BlobNotFound) else str(exc)
            for chunk_id, location, opened, offset in run.blobs:
                self.lose(opened, lost(offset, location.raw_length, chunk_id, pack.id, why))
            return
        start = run.start
        direct = self.direct
        try:
            for chunk_id, location, opened, offset in run.blobs:
                rel = location.offset - start
                if rel + location.length > len(data):
                    self.lose(
                        opened, lost(offset, location.raw_length, chunk_id, pack.id, PACK_TRUNCATED)
                    )
                    continue
                try:
                    plain = reader.open(location, chunk_id, data[rel : rel + location.length])
                except IntegrityError as exc:
                    why = reason_of(exc.message, chunk_id, pack.id)
                    self.lose(opened, lost(offset, location.raw_length, chunk_id, pack.id, why))
                    continue
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

    def lose(self, opened: RestoredFile, what: LostRange) -> None:
        """Record bytes of ``opened`` that could not be read back."""
        with opened.lock:
            opened.lost.append(what)

    def finish(self, opened: RestoredFile) -> bool:
        """Create the file if it had no data, set its size and metadata, put it in place.

        A whole file is renamed to its own name, one that lost data to its
        damaged name (and its own name is cleared); one that failed is
        removed. True if the file is whole at its place.
        """
        kept: bytes | None = None
        try:
            if not opened.failed:
                if opened.fd < 0:
                    opened.fd = self._create(opened)
                self._file_metadata(opened)
                if opened.lost:
                    kept = damaged_name(opened.name)
                    self._dest.place(opened.parent, opened.temp, kept)
                    self._dest.clear(opened.parent, opened.name)
                else:
                    self._dest.place(opened.parent, opened.temp, opened.name)
                opened.temp = b""
        except OSError as exc:
            opened.failed = True
            self.errors.append(FileError(opened.node.path, exc.strerror or str(exc)))
        finally:
            self._close(opened)
            self._dest.unpin(opened.dir_parts)
        if opened.lost:
            where = None
            if kept is not None and not opened.failed:
                where = os.fsdecode(b"/".join((*opened.dir_parts, kept)))
            item = lost_file(opened.node.path, opened.lost, where)
            self.lost.append(item)
            if not opened.failed:
                self.errors.append(file_error(item))
        return not opened.failed and not opened.lost

    def abandon(self) -> None:
        """Close and remove the files still being written (the restore stops)."""
        for opened in list(self._open):
            self._close(opened)

    def _close(self, opened: RestoredFile) -> None:
        """Close the file; remove it if it is still under its temporary name."""
        self._open.discard(opened)
        if opened.fd >= 0:
            os.close(opened.fd)
            opened.fd = -1
        if opened.temp:
            with contextlib.suppress(OSError):
                os.unlink(opened.temp, dir_fd=opened.parent)
            opened.temp = b""

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
        """Create ``opened`` under a temporary name; its descriptor."""
        fd, opened.temp = self._dest.create_temp(opened.parent, direct=opened.direct)
        self._open.add(opened)
        return fd

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
            zeros = [*opened.holes, *((r.start, r.end - r.start) for r in opened.lost)]
            for offset, length in zeros:
                for start in range(offset, offset + length, len(_ZEROS)):
                    write_all(fd, _ZEROS[: min(len(_ZEROS), offset + length - start)], start)
        elif opened.direct:
            self.direct.flush(opened)
            os.ftruncate(fd, opened.size)
        elif opened.size != opened.data_end or opened.lost:
            os.ftruncate(fd, opened.size)
        self.apply(fd, opened.node)
