"""Prune: free the space of chunks no snapshot uses any more.

Under an exclusive lock, prune

1. reads every index blob and every snapshot, and collects the chunks the
   snapshots use (their tree chunks and every file's content);
2. gives each used chunk one home: a stored pack that lists it (the packs
   with the most used bytes first, so duplicates end up unused);
3. sorts the packs: wholly unused ones are deleted, packs with at least
   ``repack_threshold`` of their bytes unused are *repacked* (their used
   blobs are decrypted, verified and written into new packs, still
   compressed), the rest are kept; packs that no index lists (left by a
   killed backup or prune) are deleted;
4. and then writes, in this order: the new packs; a new index listing the
   kept and the new packs; only then deletes the old index blobs; and only
   then the old packs; last, the half-written files killed writers left
   (no writer works while prune holds its lock).

Crash safety: the store's ``put`` is atomic and each step only starts when
the one before is complete, so a prune killed at any moment leaves

* during 4a (new packs): packs no index lists, garbage for the next prune;
* during 4b (new index): the old index blobs and some new ones, all naming
  packs that exist; the union locates every chunk;
* during 4c (old index blobs): the new index, complete, and some old blobs,
  still naming packs that exist;
* during 4d (old packs): the new index only, which names none of them; the
  rest are unindexed garbage.

Every used chunk is located by some index blob at every moment, and no pack
is deleted while an index blob names it. Prune refuses to delete anything
when it is unsure: a snapshot or index blob that cannot be read, a used
chunk in no index or only in missing packs, a blob that fails verification
while repacking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.model.snapshot import Snapshot
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.blobs.packwriter import FinishedPack, PackWriter
from haprotect.repo.blobs.uploader import INDEX_FLUSH_ENTRIES
from haprotect.repo.errors import IntegrityError, PruneRefused, UnsupportedVersion
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import entry_table, write_index
from haprotect.repo.format.indexset import IndexedPack, load_index_set
from haprotect.repo.format.names import list_folder
from haprotect.repo.format.pack import DATA_PREFIX, BlobType, PackEntry, pack_key, stored_payload
from haprotect.repo.format.snapshots import list_snapshots
from haprotect.repo.maintenance.pruneoptions import PruneOptions
from haprotect.repo.maintenance.reachable import scan
from haprotect.repo.progress import ProgressMeter
from haprotect.storage.base import BlobNotFound, BlobStore, remove_leftovers

_HINT = "run `haprotect repo check`; prune deletes nothing while the repository is damaged"


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune did, or for a dry run would do."""

    dry_run: bool
    snapshots: int
    chunks_used: int
    packs_before: int
    bytes_before: int
    packs_deleted: int = 0
    packs_repacked: int = 0
    orphan_packs: int = 0
    missing_packs_dropped: int = 0
    packs_written: int = 0
    bytes_deleted: int = 0
    bytes_written: int = 0
    index_blobs_removed: int = 0
    index_blobs_written: int = 0
    leftovers_removed: int = 0  #: half-written files of killed writers

    @property
    def bytes_after(self) -> int:
        return self.bytes_before - self.bytes_deleted + self.bytes_written

    @property
    def bytes_freed(self) -> int:
        return self.bytes_deleted - self.bytes_written


@dataclass(slots=True)
class PrunePlan:
    """What prune will keep, repack and delete, decided before anything is changed."""

    index_names: frozenset[str]
    snapshots: int
    used: int
    stored: dict[str, int]
    packs: dict[str, IndexedPack]
    keep: list[str] = field(default_factory=list)
    repack: dict[str, list[PackEntry]] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rewrite_index: bool = False

    def report(self, dry_run: bool) -> PruneReport:
        """What the plan does; a dry run estimates the bytes repacking writes."""
        stored = self.stored
        return PruneReport(
            dry_run=dry_run,
            snapshots=self.snapshots,
            chunks_used=self.used,
            packs_before=len(stored),
            bytes_before=sum(stored.values()),
            packs_deleted=len(self.delete),
            packs_repacked=len(self.repack),
            orphan_packs=len(self.orphans),
            missing_packs_dropped=len(self.missing),
            bytes_deleted=sum(stored[p] for p in (*self.delete, *self.repack, *self.orphans)),
            bytes_written=sum(e.length for kept in self.repack.values() for e in kept)
            if dry_run
            else 0,
            index_blobs_removed=len(self.index_names) if self.rewrite_index else 0,
        )


def stored_packs(store: BlobStore) -> dict[str, int]:
    """Pack id → size of every pack in the store (keys that are not packs are left alone)."""
    return list_folder(store, DATA_PREFIX).blobs


class Pruner:
    """Plans and then carries out one prune; the caller holds the exclusive lock."""

    def __init__(
        self,
        store: BlobStore,
        key: MasterKey,
        config: RepoConfig,
        meter: ProgressMeter,
        options: PruneOptions,
    ) -> None:
        if not 0.0 <= options.repack_threshold <= 1.0:
            raise ValueError("repack_threshold is a fraction between 0 and 1")
        self._store = store
        self._key = key
        self._config = config
        self._meter = meter
        self._options = options

    def plan(self, snapshots: Sequence[Snapshot]) -> PrunePlan:
        """What to keep, repack and delete so that ``snapshots`` stay whole."""
        meter = self._meter
        indexed = load_index_set(self._store, self._key, strict=True, keep=True)
        stored = stored_packs(self._store)
        meter.files_total = len(snapshots)
        reader = BlobReader(self._store, self._key, indexed.index)
        reachable = scan(reader, snapshots, lambda n: meter.update(n, 0, "reading snapshots"))
        if reachable.problems:
            snapshot_id, problem = sorted(reachable.problems.items())[0]
            raise PruneRefused(
                f"snapshot {snapshot_id[:8]} cannot be read ({problem}); prune deletes nothing",
                hint=_HINT,
            )
        used = reachable.chunks
        missing_chunks = [c for c in used if c not in indexed.index]
        if missing_chunks:
            raise PruneRefused(
                f"{len(missing_chunks)} chunks the snapshots use are in no index "
                f"(first {missing_chunks[0].hex()[:16]}); prune deletes nothing",
                hint=_HINT,
            )
        packs = indexed.packs()
        plan = PrunePlan(indexed.names, len(snapshots), len(used), stored, packs)
        home = self._claim(used, packs, stored)
        homeless = used - home.keys()
        if homeless:
            raise PruneRefused(
                f"{len(homeless)} chunks the snapshots use are only in packs that are missing "
                f"(first {next(iter(homeless)).hex()[:16]}); prune deletes nothing",
                hint=_HINT,
            )
        threshold = self._options.repack_threshold
        for pack_id, (_, entries) in sorted(packs.items()):
            if pack_id not in stored:
                plan.missing.append(pack_id)
                continue
            mine = [e for e in entries if home.get(e.id) == pack_id]
            total = sum(e.length for e in entries)
            unused = total - sum(e.length for e in mine)
            if not mine:
                plan.delete.append(pack_id)
            elif unused and unused >= threshold * total:
                plan.repack[pack_id] = mine
            else:
                plan.keep.append(pack_id)
        plan.orphans = sorted(p for p in stored if p not in packs)
        changed = plan.delete or plan.repack or plan.missing
        blobs = len(index_batches([packs[p] for p in plan.keep]))
        plan.rewrite_index = bool(changed) or len(indexed.names) > max(blobs, 1)
        return plan

    @staticmethod
    def _claim(
        used: set[bytes], packs: dict[str, IndexedPack], stored: dict[str, int]
    ) -> dict[bytes, str]:
        """One stored pack for each used chunk, preferring packs mostly in use."""

        def in_use(item: tuple[str, IndexedPack]) -> tuple[float, str]:
            entries = item[1][1]
            total = sum(e.length for e in entries) or 1
            return (-sum(e.length for e in entries if e.id in used) / total, item[0])

        home: dict[bytes, str] = {}
        for pack_id, (_, entries) in sorted(packs.items(), key=in_use):
            if pack_id not in stored:
                continue
            for e in entries:
                if e.id in used and e.id not in home:
                    home[e.id] = pack_id
        return home

    def execute(self, plan: PrunePlan) -> PruneReport:
        """Carry out ``plan`` in the crash-safe order (module docstring)."""
        meter, store = self._meter, self._store
        meter.files_total = len(plan.repack) + len(plan.delete) + len(plan.orphans)
        meter.bytes_total = sum(plan.stored[p] for p in plan.repack)
        written = self._repack(plan)
        index_blobs = 0
        if plan.rewrite_index:
            kept = [plan.packs[p] for p in plan.keep]
            new = [(f.info, f.entries) for f in written]
            for batch in index_batches([*kept, *new]):
                write_index(store, self._key, [(info, entry_table(e)) for info, e in batch])
                index_blobs += 1
            meter.update(len(plan.repack), meter.bytes_total, "deleting old index", force=True)
            for name in sorted(plan.index_names):
                _delete(store, name)
        done = len(plan.repack)
        for pack_id in (*plan.delete, *plan.repack, *plan.orphans):
            _delete(store, pack_key(pack_id))
            done += 1
            meter.update(done, meter.bytes_total, "deleting packs")
        meter.finish(done, meter.bytes_total)
        report = plan.report(dry_run=False)
        report = replace(report, leftovers_removed=remove_leftovers(store))
        return _with(report, written, index_blobs)

    def _repack(self, plan: PrunePlan) -> list[FinishedPack]:
        if not plan.repack:
            return []
        config = self._config
        max_blob = max(config.chunker.max_size, config.chunker.tree_max_size)
        writers = {
            t: PackWriter(self._key, t, config.pack_size, max_blob)
            for t in (BlobType.DATA, BlobType.TREE)
        }
        written: list[FinishedPack] = []
        done_bytes = 0
        for number, (pack_id, entries) in enumerate(sorted(plan.repack.items()), 1):
            info = plan.packs[pack_id][0]
            try:
                data = self._store.get(pack_key(pack_id))
            except BlobNotFound:
                raise PruneRefused(
                    f"pack {pack_id} vanished while pruning; prune stopped before deleting "
                    "anything",
                    hint=_HINT,
                ) from None
            aead = self._key.subkey(info.salt)
            writer = writers[info.type]
            for e in entries:
                payload = self._payload(aead, data, e, pack_id)
                writer.add(e.id, payload, e.raw_length, e.flags)
                if writer.full:
                    written.append(self._put(writer.finish()))
            done_bytes += plan.stored[pack_id]
            self._meter.update(number, done_bytes, f"repacking {pack_id[:8]}")
        for writer in writers.values():
            if not writer.empty:
                written.append(self._put(writer.finish()))
        return written

    def _payload(self, aead: AESGCM, data: bytes, e: PackEntry, pack_id: str) -> bytes:
        """The stored (maybe compressed) plaintext of one blob, verified against its id."""
        try:
            return stored_payload(aead, self._key, data, e, pack_id)
        except IntegrityError as exc:
            raise PruneRefused(
                f"{exc}; prune stopped before deleting anything", hint=_HINT
            ) from None

    def _put(self, pack: FinishedPack) -> FinishedPack:
        pack.store(self._store)
        return pack


def all_snapshots(store: BlobStore, key: MasterKey) -> list[Snapshot]:
    """Every snapshot; one that cannot be read stops prune (its data must stay)."""
    try:
        return list_snapshots(store, key, strict=True)
    except (IntegrityError, UnsupportedVersion) as exc:
        raise PruneRefused(
            f"{exc}; prune deletes nothing",
            hint="run `haprotect repo check`; `haprotect repo repair snapshots --forget URL` "
            "removes a snapshot that cannot be read",
        ) from None


def index_batches(packs: Sequence[IndexedPack]) -> list[list[IndexedPack]]:
    """``packs`` split into the lists of index blobs of up to 50,000 entries each."""
    batches: list[list[IndexedPack]] = []
    current: list[IndexedPack] = []
    count = 0
    for info, entries in packs:
        if current and count + len(entries) > INDEX_FLUSH_ENTRIES:
            batches.append(current)
            current, count = [], 0
        current.append((info, entries))
        count += len(entries)
    if current:
        batches.append(current)
    return batches


def _delete(store: BlobStore, key: str) -> None:
    with contextlib.suppress(BlobNotFound):
        store.delete(key)


def _with(report: PruneReport, written: list[FinishedPack], index_blobs: int) -> PruneReport:
    return replace(
        report,
        packs_written=len(written),
        bytes_written=sum(f.size for f in written),
        index_blobs_written=index_blobs,
    )
