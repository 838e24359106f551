"""Loading the index blobs one by one: which exist, which are damaged, what each lists.

:func:`load_index_set` gives the merged in-memory index, and what prune,
check and the lock-aware open need besides: the names of the index
blobs that were read (a prune replaces exactly those), the ones that could
not be read (check reports them instead of failing), and every pack each
blob lists, duplicates included. An index blob deleted between the listing
and the read (a concurrent prune replaced it) is simply skipped: the prune
wrote its replacement before deleting it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from haprotect.repo.crypto import MasterKey
from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.index import INDEX_PREFIX, Index, read_index_tables
from haprotect.repo.pack import ENTRY, PackEntry, PackInfo
from haprotect.storage.base import BlobNotFound, BlobStore

_LOAD_THREADS = 8

IndexedPack = tuple[PackInfo, list[PackEntry]]


@dataclass(slots=True)
class IndexSet:
    index: Index = field(default_factory=Index)
    names: frozenset[str] = frozenset()
    damaged: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, list[IndexedPack]] = field(default_factory=dict)

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
    return frozenset(info.key for info in store.list(INDEX_PREFIX))


def load_index_set(
    store: BlobStore, key: MasterKey, *, strict: bool = True, keep: bool = False
) -> IndexSet:
    """Read every index blob; ``strict`` raises on a damaged one, else records it.

    ``keep`` keeps each blob's pack list (for prune and check).
    """
    names = sorted(index_names(store))
    result = IndexSet()
    read: list[str] = []

    def one(name: str) -> list[tuple[PackInfo, memoryview]] | str | None:
        try:
            return read_index_tables(store, key, name)
        except BlobNotFound:
            return None
        except UnsupportedVersion:
            raise
        except IntegrityError as exc:
            if strict:
                exc.hint = "run `haprotect repo check`"
                raise
            return str(exc)

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
    return result
