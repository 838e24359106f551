"""``repo copy``: copy snapshots into another repository, storing only missing chunks.

Like ``restic copy`` or a Proxmox Backup Server sync job. The two
repositories have different keys, so everything copied is decrypted from
the source and encrypted again under the target's key, and since chunk ids
are keyed per repository, every id changes: the target's id of a chunk is
the target's keyed hash of its plaintext. Each snapshot's tree is streamed
from the source and written again with the target's ids (and cut by the
target's tree chunker); for each data chunk

* its target id is found without reading it where the target already holds
  a copy made earlier (:mod:`haprotect.repo.copy.idmap`): then nothing is read
  or stored;
* otherwise it is read from the source (verified), hashed with the
  target's key, and stored through the backup's own blob sink, pack writer
  and uploader (so packs, compression and the index are a backup's) unless
  the target already holds the same bytes under that id.

Files are not cut again: chunk boundaries stay the source's (as restic's
copy does), so a copy deduplicates against other copies from the same
source, and against the target's own backups only where the two
repositories cut alike.

The copy of a snapshot keeps its time, host, user, paths, tags, metadata,
statistics and errors; its metadata gains ``copied_from`` (the source
snapshot's id), by which a later copy recognises it and copies it no more,
and its parent is the copy of the source's parent, if the target has one.
Each snapshot is written as a backup writes one: packs, then the index
blobs naming them, then the snapshot blob, under a shared lock of the
target (and one of the source); a copy killed at any point leaves the
target as a killed backup would, and the next copy starts that snapshot
again.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from haprotect.model.progress import Phase
from haprotect.model.snapshot import ContentEntry, Node, NodeType, Snapshot
from haprotect.repo.blobs.blobreader import prefetch
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.blobs.chunker import StreamChunker
from haprotect.repo.blobs.packwriter import PackWriter
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.copy.idmap import PairedIds, RecentIds
from haprotect.repo.format.snapshots import resolve_id, write_snapshot
from haprotect.repo.format.tree import encode_node
from haprotect.repo.lock import GuardedStore
from haprotect.repo.progress import ProgressMeter, ProgressSink

if TYPE_CHECKING:
    from haprotect.repo.format.config import RepoConfig
    from haprotect.repo.format.crypto import MasterKey
    from haprotect.repo.format.index import Index
    from haprotect.repo.format.tree import NodeStream
    from haprotect.repo.lock import HeldLock
    from haprotect.storage.base import BlobStore


class CopyEnd(Protocol):
    """What a copy needs of the repositories it reads from and writes into.

    :class:`~haprotect.repo.repository.Repository` is one.
    """

    @property
    def store(self) -> BlobStore: ...

    @property
    def config(self) -> RepoConfig: ...

    @property
    def key(self) -> MasterKey: ...

    @property
    def index(self) -> Index: ...

    def lock(self, *, exclusive: bool = False, operation: str = "") -> HeldLock:
        """A shared lock, to use as a context manager."""

    def sync_index(self) -> None:
        """Bring the index up to date with the index blobs."""

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""

    def nodes(self, snapshot: Snapshot) -> NodeStream:
        """The nodes of a snapshot in canonical order."""

    def read_blob(self, chunk_id: bytes) -> bytes:
        """A chunk's plain bytes, verified."""


COPIED_FROM = "copied_from"
"""Metadata of a copied snapshot: the id of the snapshot it was copied from."""

READ_AHEAD = 32
"""Chunks read from the source ahead of the one being written (on 8 threads)."""


@dataclass(frozen=True, slots=True)
class CopiedSnapshot:
    """One source snapshot and its copy in the target (None: not written, a dry run)."""

    source: str
    target: str | None
    already: bool = False
    """The target held a copy already: nothing was written for it."""
    chunks_read: int = 0
    bytes_read: int = 0
    chunks_added: int = 0
    bytes_stored: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "already_copied": self.already,
            "chunks_read": self.chunks_read,
            "bytes_read": self.bytes_read,
            "chunks_added": self.chunks_added,
            "bytes_stored": self.bytes_stored,
        }


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy did (or with ``dry_run`` would do), snapshot by snapshot, oldest first."""

    snapshots: tuple[CopiedSnapshot, ...]
    dry_run: bool = False

    @property
    def copied(self) -> tuple[CopiedSnapshot, ...]:
        return tuple(s for s in self.snapshots if not s.already)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "snapshots": [s.to_json() for s in self.snapshots],
            "copied": len(self.copied),
            "already_copied": len(self.snapshots) - len(self.copied),
            "chunks_read": sum(s.chunks_read for s in self.snapshots),
            "bytes_read": sum(s.bytes_read for s in self.snapshots),
            "chunks_added": sum(s.chunks_added for s in self.snapshots),
            "bytes_stored": sum(s.bytes_stored for s in self.snapshots),
        }


def copied_from(snapshot: Snapshot) -> str | None:
    """The id of the snapshot ``snapshot`` is a copy of, if it is one."""
    value = snapshot.metadata.get(COPIED_FROM)
    return value if isinstance(value, str) and value else None


class Copies:
    """The snapshots of a target, found by what they are copies of.

    Two snapshots are the same snapshot when one is a copy of the other, or
    both are copies of one snapshot: copying back a snapshot that came from
    the target, or one the target already has from a third repository,
    copies nothing.
    """

    def __init__(self, held: Iterable[Snapshot] = ()) -> None:
        self._by: dict[str, Snapshot] = {}
        for snapshot in held:
            self.add(snapshot)

    def add(self, snapshot: Snapshot) -> None:
        for name in _names(snapshot):
            self._by.setdefault(name, snapshot)

    def of(self, snapshot: Snapshot) -> Snapshot | None:
        """The target's copy of ``snapshot`` (or the original it is a copy of), if any."""
        return next((self._by[n] for n in _names(snapshot) if n in self._by), None)


def _names(snapshot: Snapshot) -> list[str]:
    origin = copied_from(snapshot)
    return [snapshot.id] if origin is None else [snapshot.id, origin]


def copy_snapshots(
    source: CopyEnd,
    target: CopyEnd,
    snapshot_ids: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
    on_progress: ProgressSink | None = None,
) -> CopyReport:
    """Copy the snapshots ``snapshot_ids`` (ids or unique prefixes; all when None) of
    ``source`` that ``target`` lacks into ``target``; see the module docstring."""
    if dry_run:
        every = source.snapshots()
        copies = Copies(target.snapshots())
        found = [(s, copies.of(s)) for s in _chosen(source, every, snapshot_ids)]
        return CopyReport(
            tuple(CopiedSnapshot(s.id, _id(c), already=c is not None) for s, c in found),
            dry_run=True,
        )
    meter = ProgressMeter(Phase.COPY, on_progress)
    with source.lock(operation="copy"), target.lock(operation="copy") as held_lock:
        source.sync_index()
        target.sync_index()
        every = source.snapshots()
        copies = Copies(target.snapshots())
        chosen = _chosen(source, every, snapshot_ids)
        pairs = [(s, c) for s in every if (c := copies.of(s)) is not None]
        todo = [s for s in chosen if copies.of(s) is None]
        meter.files_total = sum(_files(s) for s in todo)
        meter.bytes_total = sum(s.stats.bytes_total for s in todo)
        copier = _Copier(source, target, GuardedStore(target.store, held_lock), meter)
        done: list[CopiedSnapshot] = []
        for snapshot in chosen:
            held = copies.of(snapshot)
            if held is not None:
                done.append(CopiedSnapshot(snapshot.id, held.id, already=True))
                continue
            result, copy = copier.copy(snapshot, pairs)
            done.append(result)
            copies.add(copy)
            pairs.append((snapshot, copy))
        meter.finish(copier.files_done, copier.bytes_done)
    return CopyReport(tuple(done))


def _id(snapshot: Snapshot | None) -> str | None:
    return None if snapshot is None else snapshot.id


def _chosen(
    source: CopyEnd, every: list[Snapshot], snapshot_ids: Sequence[str] | None
) -> list[Snapshot]:
    if snapshot_ids is None:
        return every
    wanted = {resolve_id(source.store, i) for i in snapshot_ids}
    return [s for s in every if s.id in wanted]


def _files(snapshot: Snapshot) -> int:
    stats = snapshot.stats
    return stats.files_new + stats.files_changed + stats.files_unchanged


def _pair_for(
    snapshot: Snapshot, pairs: Sequence[tuple[Snapshot, Snapshot]]
) -> tuple[Snapshot, Snapshot] | None:
    """The copied pair to take target ids from: the copy of the snapshot's parent, else
    the newest of the same paths (of the same host, if one is)."""
    for pair in pairs:
        if pair[0].id == snapshot.parent:
            return pair
    alike = [p for p in pairs if sorted(p[0].paths) == sorted(snapshot.paths)]
    same_host = [p for p in alike if p[0].host == snapshot.host]
    return max(same_host or alike, key=lambda p: (p[0].time, p[0].id), default=None)


@dataclass(slots=True)
class _Item:
    """One content entry of the snapshot being copied, in tree order.

    ``node`` is set on a node's last entry (or its only item, when it has no
    content): the node is complete once that item is done.
    """

    entry: ContentEntry | None
    known: ContentEntry | None
    small: bool
    node: Node | None


class _Copier:
    """Copies snapshots from ``source`` into ``target`` (writing through ``store``)."""

    def __init__(
        self, source: CopyEnd, target: CopyEnd, store: GuardedStore, meter: ProgressMeter
    ) -> None:
        self._source = source
        self._target = target
        self._store = store
        self._meter = meter
        self._recent = RecentIds()
        self._lock = threading.Lock()
        self.files_done = 0
        self.bytes_done = 0
        self._chunks_read = 0
        self._bytes_read = 0

    def copy(
        self, snapshot: Snapshot, pairs: Sequence[tuple[Snapshot, Snapshot]]
    ) -> tuple[CopiedSnapshot, Snapshot]:
        target, config = self._target, self._target.config
        key, index = target.key, target.index
        theirs = self._source.config.chunker
        uploader = Uploader(self._store, key)
        sink = BlobSink(
            key,
            index,
            uploader,
            pack_size=config.pack_size,
            max_blob=max(
                config.chunker.max_size,
                config.chunker.tree_max_size,
                theirs.max_size,
                theirs.tree_max_size,
            ),
            level=config.compression_level,
        )
        writer = sink.new_tree_writer()
        self._chunks_read = self._bytes_read = 0
        try:
            tree = self._write_tree(snapshot, _pair_for(snapshot, pairs), sink, writer)
            sink.flush(writer)
            uploader.finish(index)
        except BaseException:
            uploader.abort()
            raise
        finally:
            sink.close(writer)
        parent = next((t.id for s, t in pairs if s.id == snapshot.parent), None)
        copy = write_snapshot(
            self._store,
            key,
            replace(
                snapshot,
                id="",
                tree=tuple(tree),
                parent=parent,
                metadata={**snapshot.metadata, COPIED_FROM: snapshot.id},
            ),
        )
        result = CopiedSnapshot(
            snapshot.id,
            copy.id,
            chunks_read=self._chunks_read,
            bytes_read=self._bytes_read,
            chunks_added=sink.chunks_added,
            bytes_stored=uploader.bytes_stored,
        )
        return result, copy

    def _write_tree(
        self,
        snapshot: Snapshot,
        pair: tuple[Snapshot, Snapshot] | None,
        sink: BlobSink,
        writer: PackWriter,
    ) -> list[str]:
        """Store the snapshot's nodes with the target's ids; the target's tree chunk ids."""
        target = self._target
        paired = (
            PairedIds(self._source.nodes(pair[0]), target.nodes(pair[1]))
            if pair is not None
            else None
        )
        chunker = StreamChunker(target.config.chunker, target.key.chunker_seed)
        tree: list[str] = []
        content: list[ContentEntry] = []

        def resolve(item: _Item) -> _Item:
            if item.known is None and isinstance(item.entry, bytes):
                item.known = self._read_and_store(item.entry, sink, small=item.small)
            return item

        items = self._items(self._source.nodes(snapshot), paired)
        # closed on any error, so that no read is still storing when the sink closes
        reads = cast("Generator[_Item, None, None]", prefetch(resolve, items, READ_AHEAD))
        with closing(reads) as resolved:
            for item in resolved:
                if item.known is not None:
                    content.append(item.known)
                if item.node is None:
                    continue
                node = replace(item.node, content=tuple(content))
                content = []
                for piece in chunker.feed(encode_node(node)):
                    tree.append(sink.store_tree(writer, piece).hex())
                self._progress(node)
        tree.extend(sink.store_tree(writer, piece).hex() for piece in chunker.finish())
        return tree

    def _items(self, nodes: Iterator[Node], paired: PairedIds | None) -> Iterator[_Item]:
        """Every content entry of every node, with its target id where it is known."""
        index = self._target.index
        recent = self._recent
        for node in nodes:
            entries = node.content
            if not entries:
                yield _Item(None, None, False, node)
                continue
            mapped = paired.of(node.path) if paired is not None else {}
            small = len(entries) == 1
            last = len(entries) - 1
            for n, entry in enumerate(entries):
                known: ContentEntry | None = None
                if isinstance(entry, int):
                    known = entry
                else:
                    known = recent.get(entry)
                    if known is None:
                        found = mapped.get(entry)
                        known = found if found is not None and found in index else None
                yield _Item(entry, known, small, node if n == last else None)

    def _read_and_store(self, chunk_id: bytes, sink: BlobSink, *, small: bool) -> ContentEntry:
        """Read one chunk from the source; store it in the target unless held; its target id."""
        plain = self._source.read_blob(chunk_id)
        entry = sink.store([memoryview(plain)], small=small)[0]
        self._recent.add(chunk_id, entry)
        with self._lock:
            self._chunks_read += 1
            self._bytes_read += len(plain)
        return entry

    def _progress(self, node: Node) -> None:
        if node.type is NodeType.FILE:
            self.files_done += 1
            self.bytes_done += node.size
        self._meter.update(self.files_done, self.bytes_done, node.path)


__all__ = [
    "COPIED_FROM",
    "CopiedSnapshot",
    "Copies",
    "CopyReport",
    "copied_from",
    "copy_snapshots",
]
