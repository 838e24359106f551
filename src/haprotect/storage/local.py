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
import fcntl
import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from haprotect.errors import UsageError
from haprotect.storage.base import (
    BlobInfo,
    BlobNotFound,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
    check_key,
    check_prefix,
)

TEMP_SUFFIX = ".tmp~"
DIRECT_MIN = 1 << 20
_DIRECT = getattr(os, "O_DIRECT", 0)
_BLOCK = 4096

_NOT_FOUND = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})
_TRANSIENT = frozenset(
    {
        errno.EIO,
        errno.EAGAIN,
        errno.EINTR,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.ENOLCK,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.ECONNRESET,
        errno.EHOSTDOWN,
    }
)


def path_from_url(url: str) -> Path:
    """The directory a ``file:///path`` URL or a bare path names, made absolute."""
    if "://" not in url:
        return Path(url).expanduser().absolute()
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "file":
        raise UsageError(f"{url}: not a file:// URL")
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"{url}: a file URL names a local path (file:///path), not a host")
    if parts.query or parts.fragment:
        raise UsageError(f"{url}: a file URL takes no query or fragment")
    if not parts.path:
        raise UsageError(f"{url}: no directory")
    from urllib.parse import unquote

    return Path(unquote(parts.path)).absolute()


class LocalStore:
    """Blobs as files under one root directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).absolute()

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
        padded = -(-length // _BLOCK) * _BLOCK
        if not _DIRECT or length < DIRECT_MIN or len(buffer) < padded:
            self.put(key, buffer[:length])
            return
        self._write_atomically(
            key, lambda fd: _write_direct(fd, memoryview(buffer), length, padded)
        )

    def _write_atomically(self, key: str, write: Callable[[int], None]) -> None:
        """Have ``write`` fill a temporary file, make it durable, rename it to ``key``."""
        path = self._path(key)
        try:
            self._make_dirs(path.parent)
            fd, tmp = _temp_file(path.parent)
            try:
                try:
                    write(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:
                _unlink_quietly(tmp)
                raise
            _fsync_dir(path.parent)
        except OSError as exc:
            raise self._classify(exc, key, writing=True) from exc

    def stage(self, prefix: str) -> LocalStaged:
        """A blob written piece by piece into a temporary file under ``prefix``.

        The pieces are written with ``O_DIRECT`` where the file system allows
        it; :meth:`LocalStaged.commit` makes the file durable and renames it to
        its key, like :meth:`put`.
        """
        directory = self._root.joinpath(*check_prefix(prefix).split("/")) if prefix else self._root
        try:
            self._make_dirs(directory)
            fd, tmp = _temp_file(directory)
        except OSError as exc:
            raise self._classify(exc, prefix, writing=True) from exc
        return LocalStaged(self, fd, tmp)

    def remove_leftovers(self) -> int:
        """Remove the temporary files of killed writers (see ``base.remove_leftovers``)."""
        removed = 0
        for dirpath, _, names in os.walk(self._root):
            for name in names:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    _unlink_quietly(os.path.join(dirpath, name))
                    removed += 1
        return removed

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self._classify(exc, key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        path = self._path(key)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read(length)
        except OSError as exc:
            raise self._classify(exc, key) from exc

    def get_range_into(self, key: str, offset: int, length: int, buffer: mmap.mmap) -> memoryview:
        """``get_range`` into ``buffer`` (see :func:`haprotect.storage.base.get_range_into`).

        From 1 MiB on, the whole blocks around the range are read with
        ``O_DIRECT`` where the file system allows it: straight from disk into
        the buffer, without filling the page cache with a pack that a restore
        reads once.
        """
        _check_range(offset, length)
        start = offset - offset % _BLOCK
        end = -(-(offset + length) // _BLOCK) * _BLOCK
        if not _DIRECT or length < DIRECT_MIN or len(buffer) < end - start:
            return memoryview(self.get_range(key, offset, length))
        path = self._path(key)
        try:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _DIRECT)
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
            raise self._classify(exc, key) from exc
        first = offset - start
        return view[first : max(first, min(done, first + length))]

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except OSError as exc:
            raise self._classify(exc, key) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except IsADirectoryError:
            raise BlobNotFound(f"{self.url}/{key}: no such blob") from None
        except OSError as exc:
            if exc.errno == errno.EPERM and path.is_dir():
                raise BlobNotFound(f"{self.url}/{key}: no such blob") from None
            raise self._classify(exc, key) from exc

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        start = self._root / directory if directory else self._root
        return self._walk(start, directory + "/" if directory else "", prefix)

    def _walk(self, directory: Path, key_prefix: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            if exc.errno in _NOT_FOUND:
                return
            raise self._classify(exc, key_prefix) from exc
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
                raise self._classify(exc, key) from exc

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents, each made durable.

        A new directory's entry lives in its parent, so the parent is fsynced
        too; otherwise a crash could lose a directory holding fsynced blobs.
        """
        missing: list[Path] = []
        current = directory
        while not current.is_dir() and current.parent != current:
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            _fsync_dir(path.parent)

    def _classify(self, exc: OSError, key: str, *, writing: bool = False) -> StorageError:
        message = f"{self.url}/{key}: {exc.strerror or exc}"
        if exc.errno in _NOT_FOUND and not writing:
            return BlobNotFound(message)
        if exc.errno in _TRANSIENT:
            return TransientStorageError(message)
        hint = None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = f"check that haprotect may write to {self._root}"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = f"free space on the filesystem of {self._root}"
        return PermanentStorageError(message, hint=hint)


class LocalStaged:
    """A temporary file of a :class:`LocalStore`, filled piece by piece (see ``stage``)."""

    def __init__(self, store: LocalStore, fd: int, tmp: str) -> None:
        self._store = store
        self._fd = fd
        self._tmp = tmp
        self._size = 0
        self._padded = False
        self._direct = False
        if _DIRECT:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | _DIRECT)
                self._direct = True
            except OSError:
                pass

    def write(self, buffer: mmap.mmap, length: int) -> None:
        if self._fd < 0 or self._padded:
            raise ValueError("write to a staged blob after its last piece")
        view = memoryview(buffer)
        try:
            if self._direct:
                padded = -(-length // _BLOCK) * _BLOCK
                try:
                    _write_all(self._fd, view[:padded], self._size)
                    self._padded = padded != length
                    self._size += length
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    # the file system takes the flag but not these writes
                    flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                    fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~_DIRECT)
                    self._direct = False
            _write_all(self._fd, view[:length], self._size)
            self._size += length
        except OSError as exc:
            self.abort()
            raise self._store._classify(exc, self._tmp, writing=True) from exc

    def commit(self, key: str) -> None:
        if self._fd < 0:
            raise PermanentStorageError(f"{self._store.url}/{key}: the staged blob was dropped")
        store = self._store
        path = store._path(key)
        try:
            try:
                if self._padded:
                    os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1
            store._make_dirs(path.parent)
            os.replace(self._tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            _unlink_quietly(self._tmp)
            raise store._classify(exc, key, writing=True) from exc
        except BaseException:
            _unlink_quietly(self._tmp)
            raise

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            _unlink_quietly(self._tmp)


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise ValueError(f"a range needs offset >= 0 and length >= 0, not {offset}, {length}")


def _write_direct(fd: int, view: memoryview, length: int, padded: int) -> None:
    """Write ``view[:length]`` to the new file ``fd``, with O_DIRECT if it can."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _DIRECT)
    except OSError:
        _write_all(fd, view[:length])
        return
    try:
        _write_all(fd, view[:padded])
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        # the file system takes the flag but not these writes: through the cache
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        os.ftruncate(fd, 0)
        _write_all(fd, view[:length])
        return
    if padded != length:
        os.ftruncate(fd, length)


def _temp_file(directory: Path) -> tuple[int, str]:
    """A new temporary file in ``directory`` (a name no key can have), opened for writing."""
    import tempfile  # on first write: opening a repository reads only

    return tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=directory)


def _write_all(fd: int, view: memoryview, at: int = 0) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)


def _fsync_dir(directory: Path) -> None:
    """Make a directory's entries durable, where the filesystem can.

    Some filesystems (CIFS, some FUSE ones) refuse to fsync a directory;
    there a rename is as durable as they make it, so that is no error.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        return
