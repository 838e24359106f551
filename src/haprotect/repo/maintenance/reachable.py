"""Which chunks the snapshots reach: their tree chunks and every file's content.

Prune keeps exactly these, check looks each of them up. Snapshots of one
host share almost all their tree chunks, so each tree chunk is parsed once:
the lines wholly inside a chunk are the same whatever snapshot it is read
in, so when a chunk comes again only the lines that straddle its edges (kept
from the first reading) are parsed again. The cost of scanning many
snapshots is thus close to the cost of their changed parts.

:func:`find_users` is the slow, precise counterpart: which snapshots and
files use some given chunks (to say what a damaged pack affects).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from haprotect.model.snapshot import Node, NodeType, Snapshot
from haprotect.repo.blobs.blobreader import BlobReader, prefetch
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.tree import decode_node, decode_stream
from haprotect.repo.maintenance.pathjudge import PathJudge, Refusals, Summary
from haprotect.storage.base import StorageError

# chunk id -> (text before its first newline, after its last one, has a newline,
#              the summary of its inner paths when they are judged)
_Edges = tuple[bytes, bytes, bool, Summary | None]


@dataclass(slots=True)
class Reachable:
    """The chunks the scanned snapshots use, and the snapshots that could not be scanned whole."""

    data: set[bytes] = field(default_factory=set)
    tree: set[bytes] = field(default_factory=set)
    problems: dict[str, str] = field(default_factory=dict)
    refused: dict[str, Refusals] = field(default_factory=dict)
    """Snapshots with paths a restore refuses (only when scanned with ``judge_paths``)."""

    @property
    def chunks(self) -> set[bytes]:
        return self.data | self.tree


class _Scanner:
    def __init__(self, reader: BlobReader, judge_paths: bool) -> None:
        self._reader = reader
        self._edges: dict[bytes, _Edges] = {}
        self.reachable = Reachable()
        self._judge = PathJudge(refused=self.reachable.refused) if judge_paths else None

    def _node(self, line: bytes) -> Node:
        node = decode_node(line)
        if node.content:
            self.reachable.data.update(e for e in node.content if isinstance(e, bytes))
        return node

    def _line(self, line: bytes) -> None:
        node = self._node(line)
        if self._judge is not None:
            self._judge.path(node.path)

    def snapshot(self, snapshot: Snapshot) -> None:
        if self._judge is not None:
            self._judge.start(snapshot.id)
        ids = [bytes.fromhex(i) for i in snapshot.tree]
        self.reachable.tree.update(ids)
        edges = self._edges
        unseen = list(dict.fromkeys(i for i in ids if i not in edges))
        fetched = prefetch(lambda i: (i, self._reader.read(i)), unseen)
        rest = b""
        for chunk_id in ids:
            known = edges.get(chunk_id)
            if known is None:
                got, data = next(fetched)
                assert got == chunk_id
                rest = self._fresh(chunk_id, data, rest)
                continue
            head, tail, newline, summary = known
            if not newline:
                rest += head
                continue
            self._line(rest + head)
            if summary is not None and self._judge is not None:
                self._judge.apply(summary)
            rest = tail
        if rest:
            raise IntegrityError(f"the tree of snapshot {snapshot.id} ends mid-record")

    def _fresh(self, chunk_id: bytes, data: bytes, rest: bytes) -> bytes:
        first = data.find(b"\n")
        if first < 0:
            self._edges[chunk_id] = (data, b"", False, None)
            return rest + data
        last = data.rfind(b"\n")
        self._line(rest + data[:first])
        inner = data[first + 1 : last].split(b"\n") if last > first else []
        summary = None
        if self._judge is None:
            for line in inner:
                self._node(line)
        else:
            summary = self._judge.summarize([self._node(line).path for line in inner])
            if summary is not None:
                self._judge.apply(summary)
        self._edges[chunk_id] = (data[:first], data[last + 1 :], True, summary)
        return data[last + 1 :]


def scan(
    reader: BlobReader,
    snapshots: Sequence[Snapshot],
    on_snapshot: Callable[[int], None] | None = None,
    *,
    judge_paths: bool = False,
) -> Reachable:
    """The chunks ``snapshots`` use; a snapshot whose tree cannot be read is a problem.

    ``judge_paths`` also judges every path as a restore would
    (:mod:`haprotect.repo.maintenance.pathjudge`) into :attr:`Reachable.refused`.
    """
    scanner = _Scanner(reader, judge_paths)
    for number, snapshot in enumerate(snapshots, 1):
        try:
            scanner.snapshot(snapshot)
        except (IntegrityError, StorageError) as exc:
            scanner.reachable.problems[snapshot.id] = str(exc)
        if on_snapshot is not None:
            on_snapshot(number)
    return scanner.reachable


@dataclass(slots=True)
class Users:
    """Who uses some chunks: snapshot ids, and ``(snapshot id, path)`` of files."""

    snapshots: dict[bytes, set[str]] = field(default_factory=dict)
    files: dict[bytes, list[tuple[str, str]]] = field(default_factory=dict)


def find_users(reader: BlobReader, snapshots: Iterable[Snapshot], wanted: set[bytes]) -> Users:
    """Every snapshot and file that uses a chunk of ``wanted`` (a tree chunk: its snapshot)."""
    users = Users()
    for snapshot in snapshots:
        ids = [bytes.fromhex(i) for i in snapshot.tree]
        for chunk_id in ids:
            if chunk_id in wanted:
                users.snapshots.setdefault(chunk_id, set()).add(snapshot.id)
        try:
            for node in _nodes(reader, ids):
                for entry in _damaged(node, wanted):
                    users.snapshots.setdefault(entry, set()).add(snapshot.id)
                    users.files.setdefault(entry, []).append((snapshot.id, "/" + node.path))
        except (IntegrityError, StorageError):
            continue
    return users


def _nodes(reader: BlobReader, ids: list[bytes]) -> Iterator[Node]:
    return decode_stream(prefetch(reader.read, ids))


def _damaged(node: Node, wanted: set[bytes]) -> list[bytes]:
    if node.type is not NodeType.FILE or not node.content:
        return []
    return list(dict.fromkeys(e for e in node.content if isinstance(e, bytes) and e in wanted))
