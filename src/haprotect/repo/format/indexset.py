"""Loading the index blobs one by one: which exist, which are damaged, what each lists.

:func:`load_index_set` gives the merged in-memory index, and what prune,
check and the lock-aware open need besides: the names of the index
blobs that were read (a prune replaces exactly those), the ones that could
not be read (check reports them instead of failing), and every pack each
blob lists, duplicates included. An index blob deleted between the listing
and the read (a concurrent prune replaced it) is simply skipped: the prune
wrote its replacement before deleting it. Strays (``index/junk.tmp``: no
blob id for a name) are not index blobs and are not read.

A damaged index blob stops prune (``strict``: it cannot know what the blob
listed). Everything else skips it, and with ``recover`` (every ordinary
open) logs a warning and indexes the packs that no intact index blob names
from their own trailers (:mod:`haprotect.repo.format.packindex`), into a second
index used only for *reading* (:attr:`IndexSet.unlisted`, read after the
index through :attr:`IndexSet.for_reading`): a restore or a
check still finds every chunk of an intact pack, while a backup
deduplicates only against what the index blobs say, so it never writes a
snapshot that needs a pack no index blob names. Nothing is written: ``repo
repair index`` makes the repair lasting.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import INDEX_PREFIX, Index, Layered, Locator, read_index_tables
from haprotect.repo.format.names import DATA, blob_ids, list_folder
from haprotect.repo.format.pack import ENTRY, PackEntry, PackInfo
from haprotect.repo.format.packindex import IndexedPack, read_pack_tables
from haprotect.storage.base import BlobNotFound, BlobStore, PermanentStorageError

_LOAD_THREADS = 8
REPAIR_HINT = "run `haprotect repo check`, then `haprotect repo repair index URL`"

log = logging.getLogger("haprotect.repo")

__all__ = [
    "REPAIR_HINT",
    "IndexSet",
    "IndexedPack",
    "index_names",
    "index_unlisted",
    "load_index_set",
]


@dataclass(slots=True)
class IndexSet:
    """The index blobs as loaded: the merged index, what each lists, which could not be read."""

    index: Index = field(default_factory=Index)
    names: frozenset[str] = frozenset()
    damaged: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, list[IndexedPack]] = field(default_factory=dict)
    misnamed: set[str] = field(default_factory=set)
    """Intact index blobs not named by the hash of their bytes (found with ``keep``)."""
    unlisted: Index | None = None
    """The packs no intact index blob names, indexed from their own trailers, or None."""

    @property
    def recovered(self) -> frozenset[str]:
        """The packs indexed from their own trailers into :attr:`unlisted`."""
        return frozenset(p.id for p in self.unlisted.packs()) if self.unlisted else frozenset()

    @property
    def for_reading(self) -> Locator:
        """The index, then the unlisted packs: what restores and checks read through."""
        return self.index if self.unlisted is None else Layered(self.index, self.unlisted)

    def packs(self) -> dict[str, IndexedPack]:
        """Every pack any readable index blob lists, once, by id."""
        found: dict[str, IndexedPack] = {}
        for name in sorted(self.blobs):
            for info, entries in self.blobs[name]:
                found.setdefault(info.id, (info, entries))
        return found

    def listed_in(self) -> dict[str, str]:
        """Pack id → the first index blob that lists it."""
        where: dict[str, str] = {}
        for name in sorted(self.blobs):
            for info, _ in self.blobs[name]:
                where.setdefault(info.id, name)
        return where


def index_names(store: BlobStore) -> frozenset[str]:
    return frozenset(info.key for info in blob_ids(store, INDEX_PREFIX))


def load_index_set(
    store: BlobStore,
    key: MasterKey,
    *,
    strict: bool = True,
    keep: bool = False,
    recover: bool = False,
) -> IndexSet:
    """Read every index blob; ``strict`` raises on a damaged one, else records it.

    ``keep`` keeps each blob's pack list (for prune and check); ``recover``
    warns of damaged blobs and indexes the packs they may have named for
    reading (the module's docstring).
    """
    names = sorted(index_names(store))
    result = IndexSet()
    read: list[str] = []

    def one(name: str) -> list[tuple[PackInfo, memoryview]] | str | None:
        try:
            return read_index_tables(store, key, name, misnamed=result.misnamed if keep else None)
        except BlobNotFound:
            return None
        except UnsupportedVersion:
            raise
        except (IntegrityError, PermanentStorageError) as exc:
            if strict:
                exc.hint = REPAIR_HINT
                raise
            return (
                f"{name} cannot be read: {exc}"
                if isinstance(exc, PermanentStorageError)
                else str(exc)
            )

    with ThreadPoolExecutor(max_workers=_LOAD_THREADS) as pool:
        for name, got in zip(names, pool.map(one, names), strict=True):
            if got is None:
                continue
            read.append(name)
            if isinstance(got, str):
                result.damaged[name] = got
                continue
            for info, table in got:
                result.index.add_table(info, table)
            if keep:
                result.blobs[name] = [
                    (info, [PackEntry(*f) for f in ENTRY.iter_unpack(table)]) for info, table in got
                ]
    result.names = frozenset(read)
    if recover and result.damaged:
        _recover(store, key, result)
    return result


def _recover(store: BlobStore, key: MasterKey, result: IndexSet) -> None:
    """Index, for reading, the stored packs no intact index blob names (their trailers)."""
    for message in result.damaged.values():
        log.warning("%s; skipped it", message)
    index_unlisted(store, key, result)


def index_unlisted(store: BlobStore, key: MasterKey, result: IndexSet) -> frozenset[str]:
    """Index, for reading, the stored packs the index does not name; return their ids.

    What a restore does first: an index blob that was deleted (or damaged)
    must not cost the chunks of intact packs. Only the packs' trailers are
    read, and nothing is written; the packs of a backup still running are
    among them, harmlessly.
    """
    known = {info.id for info in result.index.packs()} | result.recovered
    stored = list_folder(store, DATA).blobs
    unlisted = [(p, s) for p, s in stored.items() if p not in known]
    if not unlisted:
        return frozenset()
    tables = read_pack_tables(store, key, unlisted)
    if result.unlisted is None:
        result.unlisted = Index()
    for info, entries in tables.packs.values():
        result.unlisted.add_pack(info, entries)
    for pack_id, problem in sorted(tables.problems.items()):
        log.warning("pack %s cannot be indexed: %s", pack_id, problem)
    if tables.packs:
        log.warning(
            "read the trailers of %d packs no intact index blob names, to find their chunks; "
            "`haprotect repo repair index` rebuilds the index",
            len(tables.packs),
        )
    return frozenset(tables.packs)
