"""``repo repair index``: the index rebuilt from the packs themselves.

Every pack's trailer lists its blobs (:mod:`haprotect.repo.packindex`), so
the index can always be rebuilt from the packs: each stored pack is listed
with the entries of its own trailer; a pack whose trailer cannot be read
keeps the entries an intact index blob gives it, if one does, and is left
out otherwise (its chunks are then lost; ``check`` and ``repair snapshots``
deal with that). Index blobs that are damaged, or that name packs no longer
stored, are dropped.

Under the exclusive lock, and in prune's crash-safe order: every new index
blob is written before any old one is deleted, so a repair killed at any
moment leaves an index that locates at least what the old one located (the
union of old and new blobs; a pack listed twice is read once). A repository
whose index is already whole is left as it is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Any

from haprotect.repo.crypto import MasterKey
from haprotect.repo.index import entry_table, write_index
from haprotect.repo.indexset import load_index_set
from haprotect.repo.names import DATA, list_folder
from haprotect.repo.packindex import IndexedPack, read_pack_tables
from haprotect.repo.progress import ProgressMeter
from haprotect.repo.prune import index_batches
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
    blobs_removed: int = 0
    blobs_written: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.missing or self.damaged)

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
            "index_blobs_removed": self.blobs_removed,
            "index_blobs_written": self.blobs_written,
        }


def repair_index(
    store: BlobStore, key: MasterKey, meter: ProgressMeter, *, dry_run: bool
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
    for pack_id in sorted(stored):
        own = tables.packs.get(pack_id)
        known = listed.get(pack_id)
        if own is not None:
            rebuilt[pack_id] = own
            if known is None or known[1] != own[1]:
                added.append(pack_id)
        elif known is not None:
            rebuilt[pack_id] = known
        elif pack_id in tables.problems:
            unreadable[pack_id] = tables.problems[pack_id]
    report = IndexRepair(
        dry_run,
        len(stored),
        len(rebuilt),
        tuple(added),
        tuple(sorted(p for p in listed if p not in stored)),
        unreadable,
        dict(sorted(indexed.damaged.items())),
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
    meter.finish(len(stored), 0)
    return replace(report, blobs_removed=len(old), blobs_written=len(batches))


__all__ = ["IndexRepair", "repair_index"]
