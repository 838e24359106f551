"""Walking the paths to back up, in the canonical order of a tree.

The walker yields one :class:`Entry` per file-system object: first the
ancestors of each backed-up path (so a restore can recreate them with their
owners and modes), then the path and, for a directory, everything below it,
depth first with the entries of each directory sorted by the bytes of their
names. That is the order of :func:`haprotect.repo.format.tree.sort_key`, so the
walk can be merged with the parent snapshot's tree in one pass.

A root may be recorded under another name than the one it is read from
(``sources``: recorded path to the path read): a staging directory that
differs every run is then recorded under a stable name. The ancestors of
such a root do not exist as recorded; they are recorded with the metadata
of the directory holding the source.

Paths are handled as bytes, so names that are not UTF-8 are kept exactly.
Objects that vanish during the walk are skipped; directories that cannot be
read are reported to ``on_error`` and the walk goes on.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from haprotect.model.snapshot import ContentEntry, Node, NodeType
from haprotect.repo.backup.filereader import open_for_reading
from haprotect.repo.format.tree import encode_file_head, file_record

ErrorSink = Callable[[str, str], None]

LSTAT_SLICE = 1024
"""Names of one directory ``lstat``-ed together (bounds the stat results held at once)."""
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_TYPES = {
    stat.S_IFREG: NodeType.FILE,
    stat.S_IFDIR: NodeType.DIR,
    stat.S_IFLNK: NodeType.SYMLINK,
    stat.S_IFIFO: NodeType.FIFO,
    stat.S_IFCHR: NodeType.CHAR,
    stat.S_IFBLK: NodeType.BLOCK,
    stat.S_IFSOCK: NodeType.SOCKET,
}


class Entry:
    """A file-system object found by the walk: where it is, its ``lstat`` and xattrs.

    The node is made on first use: the backup of an unchanged file compares
    the stat with the parent snapshot's record and never needs one. A regular
    file's xattrs are read on first use too (``xattrs=None``): setting or
    removing one changes the file's ctime, so a file whose record matches
    its parent's up to the ctime has the parent's xattrs, and the backup of
    an unchanged file does not ask for them.
    """

    __slots__ = ("_files", "_node", "_xattrs", "head", "is_file", "rel", "source", "st")

    def __init__(
        self,
        rel: bytes,
        source: bytes,
        st: os.stat_result,
        xattrs: tuple[tuple[str, bytes], ...] | None,
        node: Node | None = None,
        files: SourceFiles | None = None,
    ) -> None:
        """``files``: how xattrs and owners' names are read (the system's by default)."""
        self._files = files or SYSTEM_FILES
        self.rel = rel
        self.source = source
        self.st = st
        self._xattrs = xattrs
        self._node = node
        self.is_file = stat.S_ISREG(st.st_mode)
        self.head = self._head(st.st_size).encode() if self.is_file else b""
        """A regular file's record up to its ctime (see :func:`encode_head`), made by the walk."""

    @property
    def xattrs(self) -> tuple[tuple[str, bytes], ...]:
        if self._xattrs is None:
            self._xattrs = self._files.read_xattrs(self.source)
        return self._xattrs

    @property
    def lazy_xattrs(self) -> bool:
        """The xattrs are read on first use (not yet, or not at all: see the class)."""
        return self._xattrs is None

    @property
    def node(self) -> Node:
        if self._node is None:
            self._node = make_node(self.rel, self.source, self.st, self.xattrs, self._files)
        return self._node

    @property
    def blocks(self) -> int:
        return self.st.st_blocks

    @property
    def key(self) -> tuple[bytes, ...]:
        """The :func:`~haprotect.repo.format.tree.sort_key` of the node's path."""
        return tuple(self.rel.split(b"/"))

    @property
    def path(self) -> str:
        return os.fsdecode(self.rel)

    @property
    def hardlink(self) -> str | None:
        """A regular file's hard-link identity, if it has other names."""
        st = self.st
        return f"{st.st_dev}:{st.st_ino}" if st.st_nlink > 1 else None

    def _head(self, size: int) -> str:
        st, files = self.st, self._files
        return encode_file_head(
            os.fsdecode(self.rel),
            stat.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            files.user_name(st.st_uid),
            files.group_name(st.st_gid),
            size,
            st.st_ino,
            st.st_dev,
            st.st_nlink,
            self.hardlink,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )

    def record(
        self, size: int, content: Sequence[ContentEntry], xattrs: Xattrs | None = None
    ) -> bytes:
        """A regular file's tree record, with ``size`` bytes read as ``content``.

        The same bytes as ``encode_node`` of the file's node, made without one.
        ``xattrs`` are those the reader of the file found, if it looked.
        """
        if xattrs is not None and self._xattrs is None:
            self._xattrs = xattrs
        head = self.head if size == self.st.st_size else self._head(size).encode()
        return file_record(head, content, self.xattrs)


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


Xattrs = tuple[tuple[str, bytes], ...]


def read_xattrs(source: bytes | int) -> Xattrs:
    """The extended attributes of ``source``, a path (not followed) or an open descriptor."""
    # a descriptor is the file itself: there is no link to follow, nor may one be said
    nofollow: dict[str, bool] = {} if isinstance(source, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(source, **nofollow)
    except OSError:
        return ()
    if not names:
        return ()
    found = []
    for name in sorted(names):
        try:
            found.append((name, os.getxattr(source, name, **nofollow)))
        except OSError:
            continue
    return tuple(found)


@dataclass(frozen=True, slots=True)
class SourceFiles:
    """How a backup reads the files it backs up: the system's calls unless given
    (a test watches or fails one with its own)."""

    open: Callable[[bytes], int] = open_for_reading
    """Opens a file to read its content."""
    listdir: Callable[[bytes], list[bytes]] = os.listdir
    lstat: Callable[..., os.stat_result] = os.lstat
    """``lstat`` of a path, or of a name with ``dir_fd``."""
    read_xattrs: Callable[[bytes | int], Xattrs] = read_xattrs
    """A path's (not followed) or an open descriptor's extended attributes."""
    user_name: Callable[[int], str | None] = user_name
    group_name: Callable[[int], str | None] = group_name


SYSTEM_FILES = SourceFiles()


def make_node(
    rel: bytes,
    source: bytes,
    st: os.stat_result,
    xattrs: tuple[tuple[str, bytes], ...],
    files: SourceFiles = SYSTEM_FILES,
) -> Node:
    kind = _TYPES.get(stat.S_IFMT(st.st_mode), NodeType.FILE)
    target = os.fsdecode(os.readlink(source)) if kind is NodeType.SYMLINK else None
    is_file = kind is NodeType.FILE
    return Node(
        path=os.fsdecode(rel),
        type=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        user=files.user_name(st.st_uid),
        group=files.group_name(st.st_gid),
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        size=st.st_size if is_file else 0,
        inode=st.st_ino,
        device=st.st_dev,
        links=st.st_nlink,
        target=target,
        rdev=st.st_rdev if kind in (NodeType.CHAR, NodeType.BLOCK) else 0,
        hardlink=f"{st.st_dev}:{st.st_ino}" if is_file and st.st_nlink > 1 else None,
        xattrs=xattrs,
    )


def normalize_roots(paths: Sequence[str | os.PathLike[str]]) -> list[bytes]:
    """Absolute, normalised, without duplicates or paths inside another one."""
    roots = sorted({os.path.abspath(os.fsencode(p)) for p in paths}, key=_components)
    kept: list[bytes] = []
    for root in roots:
        if not any(_inside(root, k) for k in kept):
            kept.append(root)
    return kept


def _components(path: bytes) -> tuple[bytes, ...]:
    return tuple(c for c in path.split(b"/") if c)


def _inside(path: bytes, root: bytes) -> bool:
    rc, pc = _components(root), _components(path)
    return pc[: len(rc)] == rc


class Walker:
    """The entries of a backup's paths in canonical order; unreadable ones go to ``on_error``."""

    def __init__(
        self,
        roots: Sequence[bytes],
        on_error: ErrorSink,
        *,
        xattrs: bool = True,
        one_file_system: bool = False,
        sources: Mapping[bytes, bytes] | None = None,
        files: SourceFiles = SYSTEM_FILES,
    ) -> None:
        """``files``: how the walk lists, stats and reads (the system's by default)."""
        self._roots = list(roots)
        self._files = files
        self._listdir = files.listdir
        self._lstat = files.lstat
        self._sources = dict(sources or {})
        self._on_error = on_error
        self._xattrs = xattrs
        self._one_fs = one_file_system

    def __iter__(self) -> Iterator[Entry]:
        # recorded components -> (read from, is a root)
        items: dict[tuple[bytes, ...], tuple[bytes, bool]] = {}
        for root in self._roots:
            comps = _components(root)
            source = self._sources.get(root)
            for depth in range(1, len(comps)):
                ancestor = b"/" + b"/".join(comps[:depth])
                if source is not None:
                    ancestor = os.path.dirname(source.rstrip(b"/")) or b"/"
                items.setdefault(comps[:depth], (ancestor, False))
            items[comps] = (source or b"/" + b"/".join(comps), True)
        for comps in sorted(items):
            source, is_root = items[comps]
            if not comps:
                yield from self._walk_dir(source, b"", self._lstat(source).st_dev)
                continue
            entry = self._entry(b"/".join(comps), source, is_root)
            if entry is None:
                continue
            yield entry
            if is_root and stat.S_ISDIR(entry.st.st_mode):
                yield from self._walk_dir(entry.source, b"/".join(comps), entry.st.st_dev)

    def _entry(
        self, rel: bytes, source: bytes, root: bool = False, st: os.stat_result | None = None
    ) -> Entry | None:
        try:
            if st is None:
                st = self._lstat(source)
            if stat.S_ISREG(st.st_mode):
                return Entry(rel, source, st, None if self._xattrs else (), files=self._files)
            xattrs = self._files.read_xattrs(source) if self._xattrs else ()
            node = make_node(rel, source, st, xattrs, self._files)
        except FileNotFoundError as exc:
            if root:
                self._on_error(os.fsdecode(rel), exc.strerror or str(exc))
            return None
        except OSError as exc:
            self._on_error(os.fsdecode(rel), exc.strerror or str(exc))
            return None
        return Entry(rel, source, st, xattrs, node, self._files)

    def _children(self, source: bytes, rel: bytes) -> Iterator[Entry]:
        """The entries of directory ``source``, sorted, ``lstat``-ed a slice at a time.

        Each slice is ``lstat``-ed relative to an open descriptor of the
        directory (no path lookup per name) in one pass; only a slice in which
        a call failed is redone name by name, to skip or report that entry.
        The descriptor is closed before the slice's entries are handed out,
        so a deep walk holds none open.
        """
        try:
            names = sorted(self._listdir(source))
        except FileNotFoundError:
            return
        except OSError as exc:
            self._on_error(os.fsdecode(rel) or "/", exc.strerror or str(exc))
            return
        base = source.rstrip(b"/") + b"/"
        prefix = rel + b"/" if rel else b""
        for start in range(0, len(names), LSTAT_SLICE):
            part = names[start : start + LSTAT_SLICE]
            stats = self._lstat_all(source, rel, part)
            for name, st in zip(part, stats, strict=True):
                if st is not None:
                    entry = self._entry(prefix + name, base + name, st=st)
                    if entry is not None:
                        yield entry

    def _lstat_all(
        self, source: bytes, rel: bytes, names: list[bytes]
    ) -> list[os.stat_result | None]:
        try:
            fd = os.open(source, _DIR_FLAGS)
        except FileNotFoundError:
            return [None] * len(names)
        except OSError as exc:
            self._on_error(os.fsdecode(rel) or "/", exc.strerror or str(exc))
            return [None] * len(names)
        try:
            lstat = self._lstat
            try:
                return [lstat(name, dir_fd=fd) for name in names]
            except OSError:
                return [self._lstat_one(fd, rel, name) for name in names]
        finally:
            os.close(fd)

    def _lstat_one(self, fd: int, rel: bytes, name: bytes) -> os.stat_result | None:
        try:
            return self._lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            path = rel + b"/" + name if rel else name
            self._on_error(os.fsdecode(path), exc.strerror or str(exc))
            return None

    def _walk_dir(self, source: bytes, rel: bytes, device: int) -> Iterator[Entry]:
        stack = [self._children(source, rel)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            yield entry
            st = entry.st
            if stat.S_ISDIR(st.st_mode) and not (self._one_fs and st.st_dev != device):
                stack.append(self._children(entry.source, entry.rel))
