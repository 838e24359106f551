"""A blob store in a local directory: ``file:///srv/backup/repo`` or a bare path.

Each key is a relative path under the root; directories are created on
demand. ``put`` writes a temporary file in the key's directory, fsyncs it,
renames it over the key and fsyncs the directory, so a reader sees the old
blob, the new one or none, never a part, even after a crash. Temporary files
end in ``.tmp~``; ``~`` is not allowed in keys, so ``list`` never shows them
and a killed writer leaves only such a file behind.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from haprotect.errors import UsageError
from haprotect.redact import display_url
from haprotect.storage.base import (
    BlobInfo,
    BlobNotFound,
    StoreFeature,
    check_prefix,
)
from haprotect.storage.localfiles import (
    BLOCK,
    DIRECT_MIN,
    NOT_FOUND,
    O_DIRECT_FLAG,
    TEMP_SUFFIX,
    LocalFiles,
    LocalStaged,
    fsync_dir,
    temp_file,
    unlink_quietly,
    write_direct,
)


def path_from_url(url: str) -> Path:
    """The directory a ``file:///path`` URL or a bare path names, made absolute."""
    if "://" not in url:
        return Path(url).expanduser().absolute()
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "file":
        raise UsageError(f"{display_url(url)}: not a file:// URL")
    if parts.netloc not in ("", "localhost"):
        raise UsageError(
            f"{display_url(url)}: a file URL names a local path (file:///path), not a host"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"{display_url(url)}: a file URL takes no query or fragment")
    if not parts.path:
        raise UsageError(f"{display_url(url)}: no directory")
    from urllib.parse import unquote

    return Path(unquote(parts.path)).absolute()


class LocalStore:
    """Blobs as files under one root directory."""

    #: Pieces written to a temporary file, buffers written and ranges read around
    #: the page cache, and the temporary files of killed writers removed.
    features: frozenset[StoreFeature] = frozenset(StoreFeature)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).absolute()
        self._files = LocalFiles(self._root)

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        return cls(path_from_url(url))

    @property
    def url(self) -> str:
        return self._root.as_uri()

    @property
    def root(self) -> Path:
        return self._root

    def put(self, key: str, data: bytes) -> None:
        def write(fd: int) -> None:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(data)
                f.flush()

        self._write_atomically(key, write)

    def put_buffer(self, key: str, buffer: mmap.mmap, length: int) -> None:
        """``put`` of ``buffer[:length]`` (see :func:`haprotect.storage.base.put_buffer`).

        From 1 MiB on, the buffer is written with ``O_DIRECT`` where the file
        system allows it: straight from the buffer to the disk, rounded up to
        whole blocks and then truncated, so that storing a pack costs neither
        a copy into the page cache (which on a VM costs more CPU than
        encrypting it) nor evicts what the machine had cached. Same
        atomicity and durability as :meth:`put`.
        """
        padded = -(-length // BLOCK) * BLOCK
        if not O_DIRECT_FLAG or length < DIRECT_MIN or len(buffer) < padded:
            self.put(key, buffer[:length])
            return
        self._write_atomically(key, lambda fd: write_direct(fd, memoryview(buffer), length, padded))

    def _write_atomically(self, key: str, write: Callable[[int], None]) -> None:
        """Have ``write`` fill a temporary file, make it durable, rename it to ``key``."""
        path = self._files.path(key)
        try:
            self._files.make_dirs(path.parent)
            fd, tmp = temp_file(path.parent)
            try:
                try:
                    write(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:
                unlink_quietly(tmp)
                raise
            fsync_dir(path.parent)
        except OSError as exc:
            raise self._files.classify(exc, key, writing=True) from exc

    def stage(self, prefix: str) -> LocalStaged:
        """A blob written piece by piece into a temporary file under ``prefix``.

        The pieces are written with ``O_DIRECT`` where the file system allows
        it; :meth:`LocalStaged.commit` makes the file durable and renames it to
        its key, like :meth:`put`.
        """
        directory = self._root.joinpath(*check_prefix(prefix).split("/")) if prefix else self._root
        try:
            self._files.make_dirs(directory)
            fd, tmp = temp_file(directory)
        except OSError as exc:
            raise self._files.classify(exc, prefix, writing=True) from exc
        return LocalStaged(self._files, fd, tmp)

    def remove_leftovers(self) -> int:
        """Remove the temporary files of killed writers (see ``base.remove_leftovers``)."""
        removed = 0
        for dirpath, _, names in os.walk(self._root):
            for name in names:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    unlink_quietly(os.path.join(dirpath, name))
                    removed += 1
        return removed

    def get(self, key: str) -> bytes:
        path = self._files.path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self._files.classify(exc, key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        path = self._files.path(key)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read(length)
        except OSError as exc:
            raise self._files.classify(exc, key) from exc

    def get_range_into(self, key: str, offset: int, length: int, buffer: mmap.mmap) -> memoryview:
        """``get_range`` into ``buffer`` (see :func:`haprotect.storage.base.get_range_into`).

        From 1 MiB on, the whole blocks around the range are read with
        ``O_DIRECT`` where the file system allows it: straight from disk into
        the buffer, without filling the page cache with a pack that a restore
        reads once.
        """
        _check_range(offset, length)
        start = offset - offset % BLOCK
        end = -(-(offset + length) // BLOCK) * BLOCK
        if not O_DIRECT_FLAG or length < DIRECT_MIN or len(buffer) < end - start:
            return memoryview(self.get_range(key, offset, length))
        path = self._files.path(key)
        try:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | O_DIRECT_FLAG)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                return memoryview(self.get_range(key, offset, length))
            try:
                view = memoryview(buffer)
                done = 0
                while done < end - start:
                    got = os.preadv(fd, [view[done : end - start]], start + done)
                    if got <= 0:
                        break
                    done += got
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return memoryview(self.get_range(key, offset, length))
            raise self._files.classify(exc, key) from exc
        first = offset - start
        return view[first : max(first, min(done, first + length))]

    def exists(self, key: str) -> bool:
        try:
            return self._files.path(key).is_file()
        except OSError as exc:
            raise self._files.classify(exc, key) from exc

    def delete(self, key: str) -> None:
        path = self._files.path(key)
        try:
            path.unlink()
        except IsADirectoryError:
            raise BlobNotFound(f"{self.where(key)}: no such blob") from None
        except OSError as exc:
            if exc.errno == errno.EPERM and path.is_dir():
                raise BlobNotFound(f"{self.where(key)}: no such blob") from None
            raise self._files.classify(exc, key) from exc

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        start = self._root / directory if directory else self._root
        return self._walk(start, directory + "/" if directory else "", prefix)

    def _walk(self, directory: Path, key_prefix: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            if exc.errno in NOT_FOUND:
                return
            raise self._files.classify(exc, key_prefix) from exc
        for entry in entries:
            key = key_prefix + entry.name
            if entry.name.endswith("~") or not key.startswith(prefix):
                continue
            try:
                if entry.is_dir():
                    yield from self._walk(Path(entry.path), key + "/", prefix)
                else:
                    yield BlobInfo(key, entry.stat().st_size)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._files.classify(exc, key) from exc

    def where(self, key: str) -> str:
        """``URL: key``, how an error names a blob (a key is no part of the URL)."""
        return self._files.where(key)


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise ValueError(f"a range needs offset >= 0 and length >= 0, not {offset}, {length}")
