"""``repo repair snapshots``: new snapshots without the data that is lost.

Like ``restic repair snapshots``: a snapshot that references lost data is
rewritten into a new snapshot that references none, and the original is
kept (or with ``forget`` removed). What is lost: a chunk the index does not
locate in a stored pack, and a tree chunk that cannot be read (missing,
or failing verification). In the new snapshot

* a file whose content has a lost chunk is **truncated** before its first
  lost chunk: it keeps its intact beginning, at the right offsets (restic
  drops the missing pieces and joins the rest, which shifts what follows;
  for database files, whose pages have fixed offsets, a shorter file is
  the honest choice). Each such file is recorded in the snapshot's
  ``errors`` (path, bytes kept of how many), so listing and restoring the
  snapshot show it;
* the records of a lost tree chunk are gone, and with them the records cut
  by its edges: those files and directories are left out (a directory
  whose record is gone but whose entries remain is restored with default
  metadata, as a restore makes missing parents);
* records a restore would refuse (a path that could escape, a duplicate,
  one out of order: :func:`~haprotect.repo.restore.target.next_components`) are
  left out too, so the new snapshot restores whole.

The new snapshot keeps the original's time, host, paths and metadata, with
``repaired_from`` (the original's id) added to its metadata and the tag
``repaired``. A snapshot of which nothing can be read gets no new snapshot
(restic does the same); a snapshot blob that cannot be read is named, and
removed with ``forget``. The index must be intact (``repair index``
first): new tree chunks are deduplicated against it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from haprotect.model.snapshot import FileError, Node, NodeType, Snapshot
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.blobs.chunker import StreamChunker
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.errors import (
    IntegrityError,
    RestoreError,
    SnapshotNotFound,
    UnsupportedVersion,
)
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.format.names import DATA, list_folder
from haprotect.repo.format.snapshots import (
    SNAPSHOTS_PREFIX,
    load_snapshot,
    snapshot_ids,
    write_snapshot,
)
from haprotect.repo.format.tree import decode_node, encode_node
from haprotect.repo.restore.target import Components, next_components
from haprotect.storage.base import BlobNotFound, BlobStore, StorageError

REPAIRED_TAG = "repaired"
REPAIRED_FROM = "repaired_from"


@dataclass(frozen=True, slots=True)
class TruncatedFile:
    """A file cut short by a repair: ``kept`` bytes of ``size``, up to its first lost chunk."""

    path: str
    size: int
    kept: int


@dataclass(frozen=True, slots=True)
class SnapshotRepair:
    """One snapshot that references lost data, and what its repair did (or would do)."""

    original: str
    new: str | None = None
    files: tuple[TruncatedFile, ...] = ()
    dropped: int = 0
    """Records left out: in or cut by a lost tree chunk, malformed, or refused."""
    lost_tree_chunks: int = 0
    unreadable: str | None = None
    """Why the snapshot blob itself cannot be read (then nothing is rewritten)."""
    nothing_left: bool = False
    forgotten: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "new": self.new,
            "files": [{"path": f.path, "size": f.size, "kept": f.kept} for f in self.files],
            "dropped_records": self.dropped,
            "lost_tree_chunks": self.lost_tree_chunks,
            "unreadable": self.unreadable,
            "nothing_left": self.nothing_left,
            "forgotten": self.forgotten,
        }


@dataclass(slots=True)
class _Rewrite:
    nodes: list[Node]
    files: list[TruncatedFile]
    dropped: int = 0
    lost_tree_chunks: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.files or self.dropped or self.lost_tree_chunks)


def load_chosen(
    store: BlobStore, key: MasterKey, ids: Sequence[str]
) -> tuple[list[Snapshot], dict[str, str]]:
    """The snapshots ``ids`` (all when empty), oldest first, and why each other one cannot
    be read."""
    snapshots: list[Snapshot] = []
    unreadable: dict[str, str] = {}
    for snapshot_id in dict.fromkeys(ids or snapshot_ids(store)):
        try:
            snapshots.append(load_snapshot(store, key, snapshot_id))
        except SnapshotNotFound:
            continue
        except (IntegrityError, UnsupportedVersion) as exc:
            unreadable[snapshot_id] = str(exc)
    return sorted(snapshots, key=lambda s: (s.time, s.id)), unreadable


class SnapshotRepairer:
    """Finds and rewrites the snapshots that reference lost data (module docstring)."""

    def __init__(
        self, store: BlobStore, reader: BlobReader, index: Index, config: RepoConfig
    ) -> None:
        self._store = store
        self._reader = reader
        self._index = index
        self._config = config
        self._stored = list_folder(store, DATA).blobs

    def _available(self, chunk: bytes) -> bool:
        where = self._index.lookup(chunk)
        return where is not None and where.pack.id in self._stored

    def repair(
        self,
        snapshots: Sequence[Snapshot],
        unreadable: dict[str, str],
        *,
        dry_run: bool,
        forget: bool,
    ) -> list[SnapshotRepair]:
        done: list[SnapshotRepair] = []
        for snapshot_id, problem in sorted(unreadable.items()):
            if forget and not dry_run:
                with contextlib.suppress(BlobNotFound):
                    self._store.delete(SNAPSHOTS_PREFIX + snapshot_id)
            done.append(SnapshotRepair(snapshot_id, unreadable=problem, forgotten=forget))
        for snapshot in snapshots:
            rewrite = self._rewrite(snapshot)
            if not rewrite.changed:
                continue
            new: str | None = None
            if rewrite.nodes and not dry_run:
                new = self._write(snapshot, rewrite)
            if forget and not dry_run:
                with contextlib.suppress(BlobNotFound):
                    self._store.delete(SNAPSHOTS_PREFIX + snapshot.id)
            done.append(
                SnapshotRepair(
                    snapshot.id,
                    new,
                    tuple(rewrite.files),
                    rewrite.dropped,
                    rewrite.lost_tree_chunks,
                    nothing_left=not rewrite.nodes,
                    forgotten=forget,
                )
            )
        return done

    def _rewrite(self, snapshot: Snapshot) -> _Rewrite:
        result = _Rewrite([], [])
        previous: Components | None = None
        for line in self._records(snapshot, result):
            try:
                node = decode_node(line)
                previous = next_components(node.path, snapshot.id, previous)
            except (IntegrityError, RestoreError):
                result.dropped += 1
                continue
            result.nodes.append(self._content(node, result))
        return result

    def _records(self, snapshot: Snapshot, result: _Rewrite) -> Iterator[bytes]:
        """The whole records of the tree; those in or cut by a lost chunk are left out."""
        rest = b""
        cut = False
        for chunk_id in snapshot.tree:
            try:
                data = self._reader.read(bytes.fromhex(chunk_id))
            except (IntegrityError, StorageError, ValueError):
                result.lost_tree_chunks += 1
                result.dropped += bool(rest)
                rest, cut = b"", True
                continue
            if cut:
                newline = data.find(b"\n")
                if newline < 0:
                    continue
                data, cut = data[newline + 1 :], False
                result.dropped += 1
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            result.dropped += 1

    def _content(self, node: Node, result: _Rewrite) -> Node:
        """The node, truncated before its first lost chunk if it has one."""
        chunks = [e for e in node.content if isinstance(e, bytes)]
        if node.type is not NodeType.FILE or all(map(self._available, chunks)):
            return node
        kept = 0
        content: list[bytes | int] = []
        for entry in node.content:
            if isinstance(entry, int):
                length = entry
            elif self._available(entry):
                length = self._index.raw_length(entry)
            else:
                break
            content.append(entry)
            kept += length
        result.files.append(TruncatedFile(node.path, node.size, kept))
        return replace(node, content=tuple(content), size=kept)

    def _write(self, snapshot: Snapshot, rewrite: _Rewrite) -> str:
        """Store the new tree and snapshot; return the new snapshot's id."""
        tree = self._store_tree(rewrite.nodes)
        errors = [
            FileError(
                f.path,
                f"content lost: kept the first {f.kept} of {f.size} bytes "
                f"(repaired from snapshot {snapshot.id[:8]})",
            )
            for f in rewrite.files
        ]
        repaired = replace(
            snapshot,
            id="",
            tree=tuple(tree),
            tags=(*snapshot.tags, *((REPAIRED_TAG,) if REPAIRED_TAG not in snapshot.tags else ())),
            metadata={**snapshot.metadata, REPAIRED_FROM: snapshot.id},
            errors=(*snapshot.errors, *errors),
        )
        return write_snapshot(self._store, self._reader.key, repaired).id

    def _store_tree(self, nodes: Sequence[Node]) -> list[str]:
        key, config = self._reader.key, self._config
        uploader = Uploader(self._store, key)
        sink = BlobSink(
            key,
            self._index,
            uploader,
            pack_size=config.pack_size,
            max_blob=max(config.chunker.max_size, config.chunker.tree_max_size),
            level=config.compression_level,
        )
        writer = sink.new_tree_writer()
        chunker = StreamChunker(config.chunker, key.chunker_seed)
        tree: list[str] = []
        try:
            for node in nodes:
                tree.extend(
                    sink.store_tree(writer, c).hex() for c in chunker.feed(encode_node(node))
                )
            tree.extend(sink.store_tree(writer, c).hex() for c in chunker.finish())
            sink.flush(writer)
            uploader.finish(self._index)
        finally:
            sink.close(writer)
        return tree


__all__ = ["REPAIRED_FROM", "REPAIRED_TAG", "SnapshotRepair", "SnapshotRepairer"]
