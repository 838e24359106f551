"""Files of a local store, written durably: temporary files renamed into place.

A blob is written to a temporary file in its key's directory (a name no key
can have: it ends in :data:`TEMP_SUFFIX`), made durable (``fsync``), renamed
over its key, and its directory made durable too. From :data:`DIRECT_MIN` on,
a blob is written with ``O_DIRECT`` where the file system allows it, around
the page cache; a staged blob (:class:`LocalStaged`) is written so piece by
piece, as a backup fills its pack.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from pathlib import Path

from haprotect.redact import display_url
from haprotect.storage.base import (
    BlobNotFound,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
    check_key,
)

TEMP_SUFFIX = ".tmp~"
DIRECT_MIN = 1 << 20
O_DIRECT_FLAG = getattr(os, "O_DIRECT", 0)
BLOCK = 4096
NOT_FOUND = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})
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


class LocalFiles:
    """The files under a local store's root: each key's path, and errors naming the blob.

    What the store and its staged blobs (:class:`LocalStaged`) share.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def make_dirs(self, directory: Path) -> None:
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
            fsync_dir(path.parent)

    def where(self, key: str) -> str:
        """``URL: key``, how an error names a blob (a key is no part of the URL)."""
        shown = display_url(self.root.as_uri())
        return f"{shown}: {key}" if key else shown

    def classify(self, exc: OSError, key: str, *, writing: bool = False) -> StorageError:
        """The storage error an ``OSError`` on ``key`` is: not found, transient or permanent."""
        message = f"{self.where(key)}: {exc.strerror or exc}"
        if exc.errno in NOT_FOUND and not writing:
            return BlobNotFound(message)
        if exc.errno in _TRANSIENT:
            return TransientStorageError(message)
        hint = None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = f"check that haprotect may write to {self.root}"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = f"free space on the filesystem of {self.root}"
        elif exc.errno == errno.EFBIG:
            hint = "a file size limit (ulimit -f) or the filesystem refuses files this large"
        return PermanentStorageError(message, hint=hint)


class LocalStaged:
    """A temporary file of a local store, filled piece by piece (see ``LocalStore.stage``)."""

    def __init__(self, files: LocalFiles, fd: int, tmp: str) -> None:
        self._files = files
        self._fd = fd
        self._tmp = tmp
        self._name = Path(tmp).relative_to(files.root).as_posix()
        """The temporary file's path in the store, to name it in errors."""
        self._failed: StorageError | None = None
        """Why a piece could not be written: every later piece fails with it."""
        self._size = 0
        self._padded = False
        self._direct = False
        if O_DIRECT_FLAG:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | O_DIRECT_FLAG)
                self._direct = True
            except OSError:
                pass

    def write(self, buffer: mmap.mmap, length: int) -> None:
        if self._failed is not None:
            # pieces are queued before an earlier one's failure is seen: repeat that failure
            raise self._failed
        if self._fd < 0 or self._padded:
            raise ValueError("write to a staged blob after its last piece")
        view = memoryview(buffer)
        try:
            if self._direct:
                padded = -(-length // BLOCK) * BLOCK
                try:
                    write_all(self._fd, view[:padded], self._size)
                    self._padded = padded != length
                    self._size += length
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    # the file system takes the flag but not these writes
                    flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                    fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~O_DIRECT_FLAG)
                    self._direct = False
            write_all(self._fd, view[:length], self._size)
            self._size += length
        except OSError as exc:
            self.abort()
            self._failed = self._files.classify(exc, self._name, writing=True)
            raise self._failed from exc

    def commit(self, key: str) -> None:
        if self._fd < 0:
            raise PermanentStorageError(f"{self._files.where(key)}: the staged blob was dropped")
        files = self._files
        path = files.path(key)
        try:
            try:
                if self._padded:
                    os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1
            files.make_dirs(path.parent)
            os.replace(self._tmp, path)
            fsync_dir(path.parent)
        except OSError as exc:
            unlink_quietly(self._tmp)
            raise files.classify(exc, key, writing=True) from exc
        except BaseException:
            unlink_quietly(self._tmp)
            raise

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            unlink_quietly(self._tmp)


def write_direct(fd: int, view: memoryview, length: int, padded: int) -> None:
    """Write ``view[:length]`` to the new file ``fd``, with O_DIRECT if it can."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | O_DIRECT_FLAG)
    except OSError:
        write_all(fd, view[:length])
        return
    try:
        write_all(fd, view[:padded])
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        # the file system takes the flag but not these writes: through the cache
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        os.ftruncate(fd, 0)
        write_all(fd, view[:length])
        return
    if padded != length:
        os.ftruncate(fd, length)


def temp_file(directory: Path) -> tuple[int, str]:
    """A new temporary file in ``directory`` (a name no key can have), opened for writing."""
    import tempfile  # on first write: opening a repository reads only

    return tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=directory)


def write_all(fd: int, view: memoryview, at: int = 0) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)


def fsync_dir(directory: Path) -> None:
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


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        return
