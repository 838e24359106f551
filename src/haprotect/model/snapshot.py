"""Snapshots and the file-system nodes they record.

Terms:

snapshot
    One backup: when it was taken, on which host, of which paths, with tags
    and free-form metadata (the engine records the tier and application
    there), its parent (the snapshot it was a delta of), its statistics and
    the ids of the tree chunks that list its nodes.
node
    One file-system object inside a snapshot: a regular file, a directory, a
    symlink, a FIFO, a device or a socket. ``path`` is relative to the root
    of the backed-up host (``var/lib/pgsql/data``), ``/``-separated, and
    decoded with ``surrogateescape`` so that names which are not UTF-8
    survive the round trip (``os.fsencode(node.path)`` gives the bytes back).
content
    A regular file's data as a sequence of entries: a 32-byte chunk id, or an
    ``int``, the length of a run of zero bytes stored as a hole.
hard link
    Nodes that were one inode on the source share ``hardlink``, an identity
    (``"dev:inode"``) meaningful only within the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]

ContentEntry = bytes | int


class NodeType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    FIFO = "fifo"
    CHAR = "chardev"
    BLOCK = "blockdev"
    SOCKET = "socket"


@dataclass(frozen=True, slots=True)
class Node:
    """One file-system object in a snapshot (see the module's terms)."""

    path: str
    type: NodeType
    mode: int
    uid: int = 0
    gid: int = 0
    user: str | None = None
    group: str | None = None
    mtime_ns: int = 0
    ctime_ns: int = 0
    size: int = 0
    inode: int = 0
    device: int = 0
    links: int = 1
    target: str | None = None
    rdev: int = 0
    hardlink: str | None = None
    content: tuple[ContentEntry, ...] = ()
    xattrs: tuple[tuple[str, bytes], ...] = ()

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class BackupStats:
    """What one backup did.

    ``files_new`` were not in the parent snapshot, ``files_changed`` were but
    had to be read again, ``files_unchanged`` were taken from the parent
    without reading them. ``bytes_added`` is what the repository grew by
    (packs and index blobs, after deduplication, compression and encryption).
    """

    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    dirs: int = 0
    others: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    chunks_added: int = 0
    errors: int = 0
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FileError:
    """One path the backup could not read; the backup goes on without it."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One backup (see the module's terms)."""

    id: str
    time: datetime
    host: str
    username: str
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    parent: str | None = None
    tree: tuple[str, ...] = ()
    stats: BackupStats = BackupStats()
    errors: tuple[FileError, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:8]


@dataclass(frozen=True, slots=True)
class LostRange:
    """Bytes ``start`` to ``end`` (exclusive) of a restored file that could not be read back.

    ``chunk`` is the (first) chunk they came from, ``chunks`` how many
    chunks the range covers, ``pack`` the pack that should have held them
    (None when the index knows no pack), ``reason`` what went wrong
    ("does not match its id", "the pack is missing", ...).
    """

    start: int
    end: int
    chunk: str
    pack: str | None
    reason: str
    chunks: int = 1


@dataclass(frozen=True, slots=True)
class LostFile:
    """A file of a restore that lost data: its path, the ranges lost, where the rest went.

    ``kept_as`` is the path its readable bytes were written to (the lost
    ranges zeroed), beside where the file belongs; None if it was not kept
    (a later name of a hard-linked file, or a file that could not be written).
    """

    path: str
    ranges: tuple[LostRange, ...]
    kept_as: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreStats:
    """What a restore did.

    ``errors`` lists every file that is not at its place complete, for
    whatever reason; those among them that lost data are also in ``lost``,
    with the ranges. ``leftovers_removed`` counts partial files that an
    earlier, interrupted restore had left in the target.
    """

    files: int = 0
    dirs: int = 0
    others: int = 0
    bytes_written: int = 0
    errors: tuple[FileError, ...] = ()
    lost: tuple[LostFile, ...] = ()
    leftovers_removed: int = 0

    @property
    def nothing_restored(self) -> bool:
        """Whether the restore failed whole: errors, and no file (nor link) came out."""
        return bool(self.errors) and self.files == 0 and self.others == 0
