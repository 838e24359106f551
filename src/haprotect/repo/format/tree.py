"""The tree of a snapshot: its nodes as a stream of JSON lines.

One line per node, in canonical order (depth first, entries of a directory
sorted by the bytes of their names, which is the order of the paths' tuples
of components). The stream is cut into content-defined chunks, stored as
tree blobs in tree packs, and the snapshot lists their ids; a tree that
barely changed between two backups shares almost all its chunks with the
previous one.

Names that are not UTF-8 are stored base64-encoded (``path64``,
``target64``). Fields at their default value are left out. Unknown fields are
ignored, so later format versions may add fields.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from haprotect.model.snapshot import ContentEntry, Node, NodeType
from haprotect.repo.errors import IntegrityError

TREE_VERSION = 1


def sort_key(path: str) -> tuple[bytes, ...]:
    """The canonical order of nodes: by the bytes of each path component."""
    return tuple(os.fsencode(path).split(b"/"))


_json_str = json.encoder.encode_basestring  # json.dumps's own escaping (ensure_ascii=False)


def _get_name(record: dict[str, Any], field: str) -> str | None:
    if field in record:
        return str(record[field])
    encoded = record.get(field + "64")
    return None if encoded is None else os.fsdecode(base64.b64decode(encoded))


def _name(field: str, value: str) -> str:
    """``"field":"value"``, or ``"field64":"<base64>"`` for a name that is not UTF-8."""
    if value.isascii():
        return f'"{field}":{_json_str(value)}'
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f'"{field}64":"{base64.b64encode(os.fsencode(value)).decode("ascii")}"'
    return f'"{field}":{_json_str(value)}'


def encode_head(
    path: str,
    kind: NodeType,
    mode: int,
    uid: int,
    gid: int,
    user: str | None,
    group: str | None,
    size: int,
    inode: int,
    device: int,
    links: int,
    rdev: int,
    hardlink: str | None,
    mtime_ns: int,
    ctime_ns: int,
) -> str:
    """A node's record up to its ``ctime``: everything but target, content and xattrs.

    With :func:`encode_tail` this is exactly the compact ``json.dumps`` of the
    record (keys in the documented order, fields at their default left out),
    built without a dictionary: the backup encodes one record per file, and
    compares an unchanged file's head with its record in the parent snapshot.
    """
    parts = ["{", _name("path", path), ',"type":"', kind.value, '","mode":', str(mode)]
    if uid:
        parts += (',"uid":', str(uid))
    if gid:
        parts += (',"gid":', str(gid))
    if user is not None:
        parts += (',"user":', _json_str(user))
    if group is not None:
        parts += (',"group":', _json_str(group))
    if size:
        parts += (',"size":', str(size))
    if inode:
        parts += (',"inode":', str(inode))
    if device:
        parts += (',"device":', str(device))
    if links != 1:
        parts += (',"links":', str(links))
    if rdev:
        parts += (',"rdev":', str(rdev))
    if hardlink is not None:
        parts += (',"hardlink":', _json_str(hardlink))
    parts += (',"mtime":', str(mtime_ns), ',"ctime":', str(ctime_ns))
    return "".join(parts)


@lru_cache(maxsize=4096)
def _file_middle(mode: int, uid: int, gid: int, user: str | None, group: str | None) -> str:
    """A regular file's record between its path and its size (see :func:`encode_head`)."""
    head = encode_head("", NodeType.FILE, mode, uid, gid, user, group, 0, 0, 0, 1, 0, None, 0, 0)
    return head[len('{"path":""') : head.index(',"mtime":')]


def encode_file_head(
    path: str,
    mode: int,
    uid: int,
    gid: int,
    user: str | None,
    group: str | None,
    size: int,
    inode: int,
    device: int,
    links: int,
    hardlink: str | None,
    mtime_ns: int,
    ctime_ns: int,
) -> str:
    """:func:`encode_head` of a regular file; the usual one in one step.

    The backup makes one per file it walks: a file with data, one name and
    an ASCII path is one f-string around the (cached) part its owner and
    mode make.
    """
    if size and inode and device and links == 1 and hardlink is None and path.isascii():
        return (
            f'{{"path":{_json_str(path)}{_file_middle(mode, uid, gid, user, group)}'
            f',"size":{size},"inode":{inode},"device":{device}'
            f',"mtime":{mtime_ns},"ctime":{ctime_ns}'
        )
    return encode_head(
        path,
        NodeType.FILE,
        mode,
        uid,
        gid,
        user,
        group,
        size,
        inode,
        device,
        links,
        0,
        hardlink,
        mtime_ns,
        ctime_ns,
    )


def encode_xattrs(xattrs: Sequence[tuple[str, bytes]]) -> str:
    if not xattrs:
        return ""
    items = ",".join(f'[{_json_str(k)},"{base64.b64encode(v).decode("ascii")}"]' for k, v in xattrs)
    return f',"xattrs":[{items}]'


def encode_content(content: Sequence[ContentEntry]) -> str:
    if not content:
        return ""
    items = ",".join(f'"{e.hex()}"' if isinstance(e, bytes) else str(e) for e in content)
    return f',"content":[{items}]'


def encode_tail(
    target: str | None, content: Sequence[ContentEntry], xattrs: Sequence[tuple[str, bytes]]
) -> str:
    link = "," + _name("target", target) if target is not None else ""
    return f"{link}{encode_content(content)}{encode_xattrs(xattrs)}}}\n"


def file_record(
    head: bytes, content: Sequence[ContentEntry], xattrs: Sequence[tuple[str, bytes]]
) -> bytes:
    """A regular file's record from its head (:func:`encode_file_head`), content and xattrs."""
    return head + encode_tail(None, content, xattrs).encode()


def encode_node(node: Node) -> bytes:
    head = encode_head(
        node.path,
        node.type,
        node.mode,
        node.uid,
        node.gid,
        node.user,
        node.group,
        node.size,
        node.inode,
        node.device,
        node.links,
        node.rdev,
        node.hardlink,
        node.mtime_ns,
        node.ctime_ns,
    )
    return (head + encode_tail(node.target, node.content, node.xattrs)).encode()


def record_key(line: bytes) -> tuple[bytes, ...]:
    """The :func:`sort_key` of a record, read without decoding all of it."""
    if line.startswith(b'{"path":"'):
        end = line.find(b'"', 9)
        path = line[9:end]
        if end > 0 and b"\\" not in path:
            return tuple(path.split(b"/"))
    return sort_key(decode_node(line).path)


def decode_node(line: bytes) -> Node:
    try:
        record: dict[str, Any] = json.loads(line)
        path = _get_name(record, "path")
        if path is None:
            raise KeyError("path")
        content: tuple[ContentEntry, ...] = tuple(
            bytes.fromhex(e) if isinstance(e, str) else int(e) for e in record.get("content", ())
        )
        return Node(
            path=path,
            type=NodeType(record["type"]),
            mode=int(record["mode"]),
            uid=int(record.get("uid", 0)),
            gid=int(record.get("gid", 0)),
            user=record.get("user"),
            group=record.get("group"),
            mtime_ns=int(record["mtime"]),
            ctime_ns=int(record["ctime"]),
            size=int(record.get("size", 0)),
            inode=int(record.get("inode", 0)),
            device=int(record.get("device", 0)),
            links=int(record.get("links", 1)),
            target=_get_name(record, "target"),
            rdev=int(record.get("rdev", 0)),
            hardlink=record.get("hardlink"),
            content=content,
            xattrs=tuple((str(k), base64.b64decode(v)) for k, v in record.get("xattrs", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"a tree record is malformed ({exc}): {line[:80]!r}") from None


@dataclass(frozen=True, slots=True)
class LostChunk:
    """A tree chunk that could not be read, in place of its bytes."""

    chunk_id: str
    reason: str


@dataclass(slots=True)
class TreeGap:
    """Records lost with an unreadable tree chunk: those between ``after`` and ``before``.

    ``after`` is the path of the last record read before the gap, ``before``
    that of the first one read after it (None at either end of the tree).
    """

    chunk_id: str
    reason: str
    after: str | None = None
    before: str | None = None

    def describe(self) -> str:
        if self.after is not None and self.before is not None:
            where = f"between {self.after!r} and {self.before!r}"
        elif self.after is not None:
            where = f"after {self.after!r}"
        elif self.before is not None:
            where = f"before {self.before!r}"
        else:
            where = "anywhere in the tree"
        return (
            f"tree chunk {self.chunk_id[:16]} is lost ({self.reason}): records {where} are missing"
        )


_RECORD_START = b'{"path'
"""How every record begins (``"path"`` or ``"path64"``); no record holds it elsewhere:
quotes inside JSON strings are escaped."""


def _path_of(line: bytes) -> str:
    try:
        return decode_node(line).path
    except IntegrityError:
        return repr(line[:40])


def _records(
    chunks: Iterable[bytes | LostChunk], gaps: list[TreeGap] | None = None
) -> Iterator[bytes]:
    """The tree's records from its chunks; past a :class:`LostChunk` when ``gaps`` collects them.

    After a lost chunk, the partial record before it is dropped, and so is
    the start of the next chunk up to its first line end, unless that chunk
    starts with a record (the lost one ended on a record boundary).
    """
    rest = b""
    last: bytes | None = None
    open_gap: TreeGap | None = None
    for chunk in chunks:
        if isinstance(chunk, LostChunk):
            if gaps is None:
                raise IntegrityError(f"tree chunk {chunk.chunk_id[:16]} is lost: {chunk.reason}")
            if open_gap is None:
                open_gap = TreeGap(
                    chunk.chunk_id, chunk.reason, None if last is None else _path_of(last)
                )
                gaps.append(open_gap)
            rest = b""
            continue
        if open_gap is not None and not rest and not chunk.startswith(_RECORD_START):
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            chunk = chunk[cut + 1 :]  # noqa: PLW2901 - the lost record's end
        data = rest + chunk if rest else chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            last = line + b"\n"
            if open_gap is not None:
                open_gap.before = _path_of(last)
                open_gap = None
            yield last
    if rest:
        if gaps is None:
            raise IntegrityError("a snapshot tree ends in the middle of a record")
        gaps.append(
            TreeGap(
                "end",
                "the tree ends in the middle of a record",
                None if last is None else _path_of(last),
            )
        )


class NodeStream(Iterator[Node]):
    """The nodes of a tree from its chunks, in order, decoded as they are read.

    :meth:`records` gives the raw records (JSON lines) instead, for readers
    that decode only some of them; use one or the other. (The generators
    never refer back to the stream, so a stream dropped half read is freed
    at once, with the threads that fetch its chunks, not by a later garbage
    collection.) Built with ``lenient``, the stream goes on past lost chunks
    (:class:`LostChunk`) and lists what they took in :attr:`gaps`; otherwise
    a lost chunk raises.
    """

    def __init__(self, chunks: Iterable[bytes | LostChunk], *, lenient: bool = False) -> None:
        self._chunks = chunks
        self._nodes: Iterator[Node] | None = None
        self.gaps: list[TreeGap] | None = [] if lenient else None

    def records(self) -> Iterator[bytes]:
        return _records(self._chunks, self.gaps)

    def __next__(self) -> Node:
        if self._nodes is None:
            self._nodes = map(decode_node, _records(self._chunks, self.gaps))
        return next(self._nodes)


def decode_stream(chunks: Iterable[bytes | LostChunk], *, lenient: bool = False) -> NodeStream:
    """The nodes of a tree from its chunks, in order (past lost chunks with ``lenient``)."""
    return NodeStream(chunks, lenient=lenient)
