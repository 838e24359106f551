"""Repository statistics: what is stored, and how much deduplication and compression save.

Computed from the listing, the index and the snapshots' own statistics, so
it is fast (no tree is read):

* ``restore_bytes``: what restoring every snapshot would write (the sum of
  each snapshot's file sizes);
* ``raw_bytes``: the unique chunks, uncompressed; ``restore / raw`` is the
  deduplication ratio (holes of sparse files count as saved too);
* ``stored_bytes``: those chunks as stored; ``raw / stored`` is the
  compression ratio;
* ``pack_bytes``: what the packs take in the store, including unindexed
  packs (``orphan_*``) and blobs no snapshot uses any more (until a prune).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from haprotect.model.snapshot import Snapshot
from haprotect.repo.format.index import INDEX_PREFIX, Index
from haprotect.repo.format.pack import BlobType
from haprotect.repo.lockfile import LOCKS_PREFIX
from haprotect.repo.maintenance.prune import stored_packs
from haprotect.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class RepoStats:
    """What ``repo stats`` reports; the ratios are derived from these counts."""

    snapshots: int
    hosts: int
    restore_bytes: int
    chunks: int
    raw_bytes: int
    stored_bytes: int
    packs: int
    data_packs: int
    tree_packs: int
    pack_bytes: int
    orphan_packs: int
    orphan_bytes: int
    index_blobs: int
    index_bytes: int
    locks: int

    @property
    def dedup_ratio(self) -> float:
        return self.restore_bytes / self.raw_bytes if self.raw_bytes else 0.0

    @property
    def compression_ratio(self) -> float:
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["dedup_ratio"] = round(self.dedup_ratio, 3)
        body["compression_ratio"] = round(self.compression_ratio, 3)
        return body


def repo_stats(store: BlobStore, index: Index, snapshots: Sequence[Snapshot]) -> RepoStats:
    raw = stored = 0
    for chunk_id in index.chunk_ids():
        location = index.lookup(chunk_id)
        assert location is not None
        raw += location.raw_length
        stored += location.length
    indexed = {p.id: p.type for p in index.packs()}
    packs = stored_packs(store)
    orphans = {p: size for p, size in packs.items() if p not in indexed}
    index_sizes = [b.size for b in store.list(INDEX_PREFIX)]
    return RepoStats(
        snapshots=len(snapshots),
        hosts=len({s.host for s in snapshots}),
        restore_bytes=sum(s.stats.bytes_total for s in snapshots),
        chunks=len(index),
        raw_bytes=raw,
        stored_bytes=stored,
        packs=len(packs),
        data_packs=sum(1 for p in packs if indexed.get(p) is BlobType.DATA),
        tree_packs=sum(1 for p in packs if indexed.get(p) is BlobType.TREE),
        pack_bytes=sum(packs.values()),
        orphan_packs=len(orphans),
        orphan_bytes=sum(orphans.values()),
        index_blobs=len(index_sizes),
        index_bytes=sum(index_sizes),
        locks=sum(1 for _ in store.list(LOCKS_PREFIX)),
    )
