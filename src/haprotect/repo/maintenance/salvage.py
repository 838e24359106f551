"""Salvaging damaged packs: the blobs that still verify, moved into new packs.

A pack is damaged when its bytes no longer hash to its name: a flipped bit,
a cut, junk appended, a header or trailer overwritten. Its blobs are
authenticated one by one, so each blob that still verifies is as good as it
ever was; finding them needs the pack's entry table, from its trailer or,
when that is damaged too, from an index blob that listed the pack.
``repo repair index`` hands such packs to :func:`salvage`, which reads
each one, writes the blobs that verify into new packs (still compressed, as
prune repacks them) and says which blobs were lost. The caller indexes the
new packs and only then sets the damaged ones aside (:func:`set_aside`):
under ``data/<xx>/<id>.damaged``, never deleted, so whoever has a better
copy can still compare; ``check`` reports them as set aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from haprotect.repo.blobs.packwriter import FinishedPack, PackWriter
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.config import RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.names import SET_ASIDE_SUFFIX
from haprotect.repo.format.pack import BlobType, pack_key, stored_payload
from haprotect.repo.format.packindex import IndexedPack
from haprotect.repo.progress import ProgressMeter
from haprotect.storage.base import BlobNotFound, BlobStore


def set_aside_key(pack_id: str) -> str:
    """Where a damaged pack is kept once its readable blobs are in new packs."""
    return pack_key(pack_id) + SET_ASIDE_SUFFIX


@dataclass(slots=True)
class Salvage:
    """What salvaging some damaged packs gave."""

    written: list[FinishedPack] = field(default_factory=list)
    saved: dict[str, int] = field(default_factory=dict)
    """Blobs moved to new packs, by damaged pack."""
    lost: dict[str, int] = field(default_factory=dict)
    """Blobs that fail verification (or lie past the pack's end), by damaged pack."""


def salvage(
    store: BlobStore,
    key: MasterKey,
    config: RepoConfig,
    damaged: Mapping[str, IndexedPack],
    meter: ProgressMeter,
    *,
    dry_run: bool,
) -> Salvage:
    """Read each damaged pack and move its blobs that verify into new packs.

    With ``dry_run`` the blobs are verified and counted, and nothing is
    written. The new packs are stored before this returns; the caller
    indexes them.
    """
    result = Salvage()
    max_blob = max(config.chunker.max_size, config.chunker.tree_max_size)
    writers = {
        t: PackWriter(key, t, config.pack_size, max_blob) for t in (BlobType.DATA, BlobType.TREE)
    }
    for number, (pack_id, (info, entries)) in enumerate(sorted(damaged.items()), 1):
        meter.update(number, 0, f"salvaging pack {pack_id[:8]}")
        try:
            data = store.get(pack_key(pack_id))
        except BlobNotFound:
            result.lost[pack_id] = len(entries)
            continue
        aead = key.subkey(info.salt)
        saved = lost = 0
        for entry in entries:
            try:
                payload = stored_payload(aead, key, data, entry, pack_id)
            except IntegrityError:
                lost += 1
                continue
            saved += 1
            if dry_run:
                continue
            writer = writers[info.type]
            writer.add(entry.id, payload, entry.raw_length, entry.flags)
            if writer.full:
                result.written.append(_stored(store, writer.finish()))
        result.saved[pack_id], result.lost[pack_id] = saved, lost
    for writer in writers.values():
        if not writer.empty:
            result.written.append(_stored(store, writer.finish()))
    return result


def set_aside(store: BlobStore, pack_id: str) -> None:
    """Move a salvaged pack out of the repository's way (kept, never deleted)."""
    try:
        data = store.get(pack_key(pack_id))
    except BlobNotFound:
        return
    store.put(set_aside_key(pack_id), data)
    store.delete(pack_key(pack_id))


def _stored(store: BlobStore, pack: FinishedPack) -> FinishedPack:
    pack.store(store)
    return pack


__all__ = ["Salvage", "salvage", "set_aside", "set_aside_key"]
