"""The restore target: creating nodes below a directory, and never outside it.

Every path from a snapshot is checked before use: it must be relative and
have no empty, ``.`` or ``..`` component. Every directory below the target
is opened with ``O_NOFOLLOW`` one component at a time, relative to its
parent's descriptor, and every object is created relative to its parent
directory's descriptor with ``O_EXCL`` or ``O_NOFOLLOW``. So a symlink in the
target, whether the restore created it or found it there, is never followed:
a path that passes through one is refused.

Regular files are written under a temporary name in their directory
(:data:`PARTIAL_PREFIX` and a number) and renamed to their own name only
when complete (:meth:`Target.place`), so that no final name ever holds a
partial file. A restore that is killed leaves those temporary files
behind; the next restore into the same target removes them from every
directory it restores into that already existed (:meth:`Target.make_dir`
with ``tidy``).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path

from haprotect.repo.errors import IntegrityError, RestoreError

Components = tuple[bytes, ...]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECT = getattr(os, "O_DIRECT", 0)
_CACHED_DIRS = 64
PARTIAL_PREFIX = b".haprotect-partial-"


def components(path: str, snapshot_id: str) -> Components:
    """The components of a snapshot path, refusing any that could escape."""
    raw = os.fsencode(path)
    parts = tuple(raw.split(b"/"))
    if not raw or raw.startswith(b"/") or any(p in (b"", b".", b"..") or b"\0" in p for p in parts):
        raise RestoreError(
            f"refusing path {path!r} of snapshot {snapshot_id[:8]}: it would escape the target",
            hint="the snapshot was crafted or damaged; run `haprotect check`",
        )
    return parts


def next_components(path: str, snapshot_id: str, previous: Components | None) -> Components:
    """:func:`components`, refusing a path not strictly after ``previous`` in canonical
    order (a duplicate or an out-of-order node). ``check`` judges trees with it too."""
    parts = components(path, snapshot_id)
    if previous is not None and parts <= previous:
        raise IntegrityError(
            f"the tree of snapshot {snapshot_id[:8]} is out of order at {path!r}",
            hint="the snapshot was crafted or damaged; run `haprotect check`",
        )
    return parts


def display(parts: Components) -> str:
    return os.fsdecode(b"/".join(parts))


class Target:
    """The directory a restore writes into; every node is created below it, none outside.

    Keeps descriptors of recently used directories (and pinned ones) open, so
    that creating many files does not open each parent again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.root = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RestoreError(f"cannot use {path} as restore target: {exc.strerror}") from None
        self._dirs: OrderedDict[Components, int] = OrderedDict()
        self._pins: dict[Components, int] = {}
        self._lock = threading.Lock()
        self._temp_prefix = PARTIAL_PREFIX + b"%x-" % os.getpid()
        self._temps = itertools.count()
        self.leftovers_removed = 0
        """Partial files of an earlier restore removed by :meth:`make_dir` and :meth:`tidy`."""

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.root)

    def trim(self) -> None:
        """Close least recently used directory descriptors beyond the cache size.

        Pinned directories stay open whatever their age.
        """
        if len(self._dirs) <= _CACHED_DIRS:
            return
        with self._lock:
            for parts in list(self._dirs):
                if len(self._dirs) <= _CACHED_DIRS:
                    break
                if parts not in self._pins:
                    os.close(self._dirs.pop(parts))

    def pin(self, parts: Components) -> int:
        """Like :meth:`dir_fd`, but valid until a matching :meth:`unpin` (any thread)."""
        fd = self.dir_fd(parts)
        if parts:
            with self._lock:
                self._pins[parts] = self._pins.get(parts, 0) + 1
        return fd

    def unpin(self, parts: Components) -> None:
        if not parts:
            return
        with self._lock:
            count = self._pins[parts] - 1
            if count:
                self._pins[parts] = count
            else:
                del self._pins[parts]

    def dir_fd(self, parts: Components) -> int:
        """A descriptor of the directory ``parts``, creating missing ones (mode 0700).

        Valid until the next :meth:`trim`.
        """
        if not parts:
            return self.root
        fd = self._dirs.get(parts)
        if fd is not None:
            self._dirs.move_to_end(parts)
            return fd
        parent = self.dir_fd(parts[:-1])
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise RestoreError(
                    f"refusing to restore below {display(parts)}: it is a symlink or not a "
                    "directory in the target",
                    hint="restore into an empty directory",
                ) from None
            raise
        self._dirs[parts] = fd
        return fd

    def make_dir(self, parts: Components, *, tidy: bool = False) -> None:
        """Make directory ``parts`` (mode 0700 until the end of the restore).

        ``tidy``: if it already exists, remove the partial files an earlier
        restore left in it (only while no one else writes into the target).
        """
        parent, name = self.dir_fd(parts[:-1]), parts[-1]
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self.clear(parent, name)
                os.mkdir(name, 0o700, dir_fd=parent)
            elif tidy:
                self.tidy(parts)

    def tidy(self, parts: Components) -> None:
        """Remove the partial files an earlier restore left in directory ``parts``."""
        fd = self.dir_fd(parts)
        for name in os.listdir(fd):
            if os.fsencode(name).startswith(PARTIAL_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
                    self.leftovers_removed += 1

    def clear(self, parent: int, name: bytes) -> None:
        """Remove whatever is at ``name`` (an empty directory at most).

        A directory that is not empty stays, and the node that should take
        its place fails alone (an ``OSError``, recorded against its path):
        the restore goes on with the others.
        """
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"a directory in the target is in its place ({exc.strerror})"
                ) from None

    def create_temp(self, parent: int, *, direct: bool = False) -> tuple[int, bytes]:
        """Create a new partial file in directory ``parent``: its descriptor and name."""
        flags = _FILE_FLAGS | (_DIRECT if direct else 0)
        while True:
            name = self._temp_prefix + b"%x" % next(self._temps)
            try:
                return _create(name, flags, parent), name
            except FileExistsError:
                # left by a process that had this one's pid: take the next number
                continue

    def place(self, parent: int, temp: bytes, name: bytes) -> None:
        """Rename the complete file ``temp`` of directory ``parent`` to ``name``.

        Whatever is at ``name`` is replaced (an empty directory at most).
        """
        try:
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise
            self.clear(parent, name)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)

    def link(self, existing: Components, parts: Components) -> None:
        source_dir = self.dir_fd(existing[:-1])
        parent = self.dir_fd(parts[:-1])
        self.clear(parent, parts[-1])
        os.link(
            existing[-1],
            parts[-1],
            src_dir_fd=source_dir,
            dst_dir_fd=parent,
            follow_symlinks=False,
        )


def _create(name: bytes, flags: int, parent: int) -> int:
    try:
        return os.open(name, flags, 0o600, dir_fd=parent)
    except OSError as exc:
        if exc.errno != errno.EINVAL or not flags & _DIRECT:
            raise
    # The file system refuses O_DIRECT, after creating the file: create it again
    # (still exclusively) to write through the page cache.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=parent)
    return os.open(name, flags & ~_DIRECT, 0o600, dir_fd=parent)
