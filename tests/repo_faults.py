"""What a damaged repository still holds, worked out from the bytes alone.

The fault campaign damages a copy of a pristine repository and then asks
haprotect what survived. The answer it checks against is computed here,
independently of the code under test: a file survives when every byte the
repository stores for it is still there and unchanged (its data blobs and
the tree blob or blobs that hold its record), comparing the damaged copy
with the pristine one. (A pack's header is not among them: the index holds
each pack's salt too, so a damaged header costs a pack's blobs nothing a
repair cannot salvage.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from haprotect.model.snapshot import NodeType, Snapshot
from haprotect.repo import Repository
from haprotect.storage.local import LocalStore


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes of one stored object: ``key`` (relative to the repository), ``start``, ``end``."""

    key: str
    start: int
    end: int


@dataclass(slots=True)
class FileTruth:
    path: str
    digest: str
    data: list[Span] = field(default_factory=list)
    record: list[Span] = field(default_factory=list)


@dataclass(slots=True)
class SnapshotTruth:
    snapshot: Snapshot
    files: dict[str, FileTruth]
    tree: list[Span]


@dataclass(slots=True)
class Pristine:
    """A repository as it was written, and what each of its snapshots holds."""

    path: Path
    snapshots: list[SnapshotTruth]
    data_packs: list[str]
    tree_packs: list[str]

    def blob(self, key: str) -> bytes:
        return (self.path / key).read_bytes()

    def pack_of(self, snapshot: int, path_suffix: str) -> Span:
        """The first data blob of the file of ``snapshot`` whose path ends with ``path_suffix``."""
        truth = self.snapshots[snapshot]
        (match,) = [f for p, f in truth.files.items() if p.endswith(path_suffix)]
        return match.data[0]


def read_pristine(path: Path, passphrase: str) -> Pristine:
    repo = Repository.open(LocalStore(path), passphrase)
    index = repo.index
    truths: list[SnapshotTruth] = []
    data_packs: set[str] = set()
    tree_packs: set[str] = set()
    for snapshot in sorted(repo.snapshots(), key=lambda s: s.time):
        tree_spans: list[Span] = []
        stream = bytearray()
        chunk_edges: list[tuple[int, int, Span]] = []
        for hex_id in snapshot.tree:
            chunk = bytes.fromhex(hex_id)
            where = index.lookup(chunk)
            assert where is not None
            span = Span(where.pack.key, where.offset, where.offset + where.length)
            tree_packs.add(where.pack.key)
            tree_spans.append(span)
            plain = repo.read_blob(chunk)
            chunk_edges.append((len(stream), len(stream) + len(plain), span))
            stream += plain
        lines = _line_ranges(bytes(stream))
        nodes = list(repo.nodes(snapshot))
        assert len(lines) == len(nodes), "one tree line per node"
        files: dict[str, FileTruth] = {}
        for node, (start, end) in zip(nodes, lines, strict=True):
            if node.type is not NodeType.FILE:
                continue
            record = [span for lo, hi, span in chunk_edges if lo < end and start < hi]
            truth = FileTruth(node.path, _digest(repo, node.content), record=record)
            for entry in node.content:
                if isinstance(entry, int):
                    continue
                where = index.lookup(entry)
                assert where is not None
                data_packs.add(where.pack.key)
                truth.data.append(Span(where.pack.key, where.offset, where.offset + where.length))
            files[node.path] = truth
        truths.append(SnapshotTruth(snapshot, files, tree_spans))
    return Pristine(path, truths, sorted(data_packs), sorted(tree_packs - data_packs))


def _line_ranges(stream: bytes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = 0
    while start < len(stream):
        end = stream.find(b"\n", start)
        end = len(stream) if end < 0 else end + 1
        out.append((start, end))
        start = end
    return out


def _digest(repo: Repository, content: Iterable[bytes | int]) -> str:
    h = hashlib.sha256()
    for entry in content:
        h.update(bytes(entry) if isinstance(entry, int) else repo.read_blob(entry))
    return h.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class Survey:
    """Compares a damaged copy with the pristine repository, span by span."""

    def __init__(self, pristine: Pristine, damaged: Path) -> None:
        self._pristine = pristine
        self._damaged = damaged
        self._cache: dict[str, bytes | None] = {}

    def _bytes(self, key: str) -> bytes | None:
        if key not in self._cache:
            path = self._damaged / key
            self._cache[key] = path.read_bytes() if path.is_file() else None
        return self._cache[key]

    def intact(self, span: Span) -> bool:
        now = self._bytes(span.key)
        if now is None:
            return False
        was = self._pristine.blob(span.key)
        return now[span.start : span.end] == was[span.start : span.end]

    def file_intact(self, truth: FileTruth) -> bool:
        return all(self.intact(s) for s in truth.record) and all(self.intact(s) for s in truth.data)

    def lost(self, snapshot: SnapshotTruth) -> set[str]:
        return {p for p, f in snapshot.files.items() if not self.file_intact(f)}

    def unlisted(self, snapshot: SnapshotTruth) -> set[str]:
        """Files whose very record is lost: a restore cannot know their names."""
        return {p for p, f in snapshot.files.items() if not all(self.intact(s) for s in f.record)}


def restored_path(target: Path, path: str) -> Path:
    return target / path.lstrip("/")


def exists(path: Path) -> bool:
    return os.path.lexists(path)
