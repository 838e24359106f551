"""``repo repair index``: the index rebuilt from the packs themselves.

Every pack's trailer lists its blobs (:mod:`haprotect.repo.format.packindex`), so
the index can always be rebuilt from the packs: each stored pack is listed
with the entries of its own trailer; a pack whose trailer cannot be read
keeps the entries an intact index blob gives it, if one does, and is left
out otherwise (its chunks are then lost; ``check`` and ``repair snapshots``
deal with that). Index blobs that are damaged, or that name packs no longer
stored, are dropped.

A damaged pack is salvaged (:mod:`haprotect.repo.maintenance.salvage`): its blobs that
still verify move into new packs and the pack is set aside. Damaged means a
trailer that cannot be read (found by reading trailers, always) or, with
``read_data``, bytes that no longer hash to the pack's name (found only by
reading every pack whole, as ``check --read-data`` does).

Under the exclusive lock, and in prune's crash-safe order: the salvaged
blobs' new packs first, then every new index blob before any old one is
deleted, and only then are damaged packs set aside; a repair killed at any
moment leaves an index that locates at least what the old one located (the
union of old and new blobs; a pack listed twice is read once). A repository
whose index is already whole and whose packs are whole is left as it is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Any

import blake3

from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import entry_table, write_index
from haprotect.repo.format.indexset import load_index_set
from haprotect.repo.format.names import DATA, list_folder
from haprotect.repo.format.pack import pack_key
from haprotect.repo.format.packindex import IndexedPack, read_pack_tables
from haprotect.repo.maintenance.prune import index_batches
from haprotect.repo.maintenance.salvage import salvage, set_aside
from haprotect.repo.progress import ProgressMeter
from haprotect.storage.base import BlobNotFound, BlobStore


@dataclass(frozen=True, slots=True)
class IndexRepair:
    """What ``repair index`` did, or with ``dry_run`` would do."""

    dry_run: bool
    packs: int
    """Packs stored."""
    packs_indexed: int
    """Packs the new index lists."""
    added: tuple[str, ...] = ()
    """Packs no intact index blob listed (or listed with other entries than their trailer)."""
    missing: tuple[str, ...] = ()
    """Packs index blobs named that are not stored: dropped from the index."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Packs whose trailer cannot be read and no intact index blob lists: not indexed."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Index blobs that could not be read."""
    misnamed: tuple[str, ...] = ()
    """Index blobs not named by the hash of their bytes (copies, renames)."""
    salvaged: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Damaged packs set aside: blobs moved to new packs, blobs lost."""
    packs_written: int = 0
    blobs_removed: int = 0
    blobs_written: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.missing or self.damaged or self.misnamed or self.salvaged)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "packs": self.packs,
            "packs_indexed": self.packs_indexed,
            "added": list(self.added),
            "missing": list(self.missing),
            "unreadable": dict(self.unreadable),
            "damaged_index_blobs": dict(self.damaged),
            "misnamed_index_blobs": list(self.misnamed),
            "salvaged": {
                p: {"blobs_saved": saved, "blobs_lost": lost}
                for p, (saved, lost) in self.salvaged.items()
            },
            "packs_written": self.packs_written,
            "index_blobs_removed": self.blobs_removed,
            "index_blobs_written": self.blobs_written,
        }


def repair_index(
    store: BlobStore,
    key: MasterKey,
    config: RepoConfig,
    meter: ProgressMeter,
    *,
    dry_run: bool,
    read_data: bool = False,
) -> IndexRepair:
    """Rebuild the index from the packs (see the module docstring); call under the
    exclusive lock, with ``store`` guarded by it."""
    meter.update(0, 0, "reading the index", force=True)
    indexed = load_index_set(store, key, strict=False, keep=True)
    listed = indexed.packs()
    stored = list_folder(store, DATA).blobs
    meter.files_total = len(stored)
    meter.update(0, 0, "reading pack trailers", force=True)
    tables = read_pack_tables(store, key, stored.items())
    rebuilt: dict[str, IndexedPack] = {}
    added: list[str] = []
    unreadable: dict[str, str] = {}
    damaged: dict[str, IndexedPack] = {}
    for pack_id in sorted(stored):
        own = tables.packs.get(pack_id)
        known = listed.get(pack_id)
        if own is not None:
            if read_data and not _whole(store, pack_id):
                damaged[pack_id] = own
                continue
            rebuilt[pack_id] = own
            if known is None or known[1] != own[1]:
                added.append(pack_id)
        elif known is not None:
            damaged[pack_id] = known
        elif pack_id in tables.problems:
            unreadable[pack_id] = tables.problems[pack_id]
    saved = salvage(store, key, config, damaged, meter, dry_run=dry_run)
    rebuilt.update((p.info.id, (p.info, p.entries)) for p in saved.written)
    report = IndexRepair(
        dry_run,
        len(stored),
        len(rebuilt),
        tuple(added),
        tuple(sorted(p for p in listed if p not in stored)),
        unreadable,
        dict(sorted(indexed.damaged.items())),
        tuple(sorted(indexed.misnamed)),
        {p: (saved.saved.get(p, 0), saved.lost.get(p, 0)) for p in sorted(damaged)},
        len(saved.written),
    )
    batches = index_batches([rebuilt[p] for p in sorted(rebuilt)]) if report.changed else []
    old = sorted(indexed.names)
    if dry_run or not report.changed:
        meter.finish(len(stored), 0)
        removed = len(old) if report.changed else 0
        return replace(report, blobs_removed=removed, blobs_written=len(batches))
    for number, batch in enumerate(batches, 1):
        write_index(store, key, [(info, entry_table(entries)) for info, entries in batch])
        meter.update(len(stored), 0, f"writing index blob {number} of {len(batches)}")
    for name in old:
        with contextlib.suppress(BlobNotFound):
            store.delete(name)
    for pack_id in sorted(damaged):
        set_aside(store, pack_id)
    meter.finish(len(stored), 0)
    return replace(report, blobs_removed=len(old), blobs_written=len(batches))


def _whole(store: BlobStore, pack_id: str) -> bool:
    """Whether a pack's bytes still hash to its name (reads it whole)."""
    try:
        return blake3.blake3(store.get(pack_key(pack_id))).hexdigest() == pack_id
    except BlobNotFound:
        return False


__all__ = ["IndexRepair", "repair_index"]
