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
from collections.abc import Iterable, Iterator
from typing import Any

from haprotect.model.snapshot import ContentEntry, Node, NodeType
from haprotect.repo.errors import IntegrityError

TREE_VERSION = 1

_DEFAULTS: dict[str, object] = {
    "uid": 0,
    "gid": 0,
    "user": None,
    "group": None,
    "size": 0,
    "inode": 0,
    "device": 0,
    "links": 1,
    "rdev": 0,
    "hardlink": None,
}


def sort_key(path: str) -> tuple[bytes, ...]:
    """The canonical order of nodes: by the bytes of each path component."""
    return tuple(os.fsencode(path).split(b"/"))


def _put_name(record: dict[str, Any], field: str, value: str) -> None:
    try:
        value.encode("utf-8")
        record[field] = value
    except UnicodeEncodeError:
        record[field + "64"] = base64.b64encode(os.fsencode(value)).decode("ascii")


def _get_name(record: dict[str, Any], field: str) -> str | None:
    if field in record:
        return str(record[field])
    encoded = record.get(field + "64")
    return None if encoded is None else os.fsdecode(base64.b64decode(encoded))


def encode_node(node: Node) -> bytes:
    record: dict[str, Any] = {}
    _put_name(record, "path", node.path)
    record["type"] = node.type.value
    record["mode"] = node.mode
    for name, default in _DEFAULTS.items():
        value = getattr(node, name)
        if value != default:
            record[name] = value
    record["mtime"] = node.mtime_ns
    record["ctime"] = node.ctime_ns
    if node.target is not None:
        _put_name(record, "target", node.target)
    if node.content:
        record["content"] = [e.hex() if isinstance(e, bytes) else e for e in node.content]
    if node.xattrs:
        record["xattrs"] = [[k, base64.b64encode(v).decode("ascii")] for k, v in node.xattrs]
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


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


def decode_stream(chunks: Iterable[bytes]) -> Iterator[Node]:
    """The nodes of a tree from its chunks, in order."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield decode_node(line)
    if rest:
        raise IntegrityError("a snapshot tree ends in the middle of a record")
