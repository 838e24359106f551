"""The index: where each chunk is stored (pack, offset, length).

Index blobs (``index/<id>``) are sealed blobs written only after every pack
they name is stored, so an index entry always points at an existing pack.
The in-memory :class:`Index` is the union of all index blobs; a chunk listed
twice (two backups stored it concurrently) keeps its first location.

Index blob plaintext (little-endian)::

    "HAIX" | version u8 | 3 reserved | pack count u32
    per pack:  id[32] | salt[32] | type u8 | 3 reserved | entry count u32
               entry*: id[32] offset u32 length u32 raw_length u32 flags u8 3 reserved
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import blake3

from haprotect.repo.crypto import MasterKey, SealedKind, seal, unseal
from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.pack import ENTRY, BlobType, PackEntry, PackInfo
from haprotect.storage.base import BlobStore

INDEX_PREFIX = "index/"
INDEX_MAGIC = b"HAIX"
INDEX_VERSION = 1
_HEAD = struct.Struct("<4sB3xI")
_PACK = struct.Struct("<32s32sB3xI")
_LOAD_THREADS = 8


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack: PackInfo
    offset: int
    length: int
    raw_length: int
    flags: int


class Index:
    """Chunk id → location, for every chunk of the repository."""

    def __init__(self) -> None:
        self._packs: list[PackInfo] = []
        self._pack_numbers: dict[str, int] = {}
        self._blobs: dict[bytes, tuple[int, int, int, int, int]] = {}

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def has_all(self, chunk_ids: Iterable[bytes]) -> bool:
        return all(map(self._blobs.__contains__, chunk_ids))

    def _pack_number(self, info: PackInfo) -> int:
        number = self._pack_numbers.get(info.id)
        if number is None:
            number = len(self._packs)
            self._packs.append(info)
            self._pack_numbers[info.id] = number
        return number

    def add_pack(self, info: PackInfo, entries: Iterable[PackEntry]) -> None:
        number = self._pack_number(info)
        blobs = self._blobs
        for e in entries:
            if e.id not in blobs:
                blobs[e.id] = (number, e.offset, e.length, e.raw_length, e.flags)

    def add_table(self, info: PackInfo, table: bytes | memoryview) -> None:
        """Like :meth:`add_pack`, from the pack's entries as stored (48-byte records)."""
        number = self._pack_number(info)
        blobs = self._blobs
        for chunk_id, offset, length, raw_length, flags in ENTRY.iter_unpack(table):
            if chunk_id not in blobs:
                blobs[chunk_id] = (number, offset, length, raw_length, flags)

    def lookup(self, chunk_id: bytes) -> BlobLocation | None:
        found = self._blobs.get(chunk_id)
        if found is None:
            return None
        number, offset, length, raw_length, flags = found
        return BlobLocation(self._packs[number], offset, length, raw_length, flags)

    def raw_length(self, chunk_id: bytes) -> int:
        return self._blobs[chunk_id][3]

    def packs(self) -> Sequence[PackInfo]:
        return tuple(self._packs)

    def chunk_ids(self) -> Iterator[bytes]:
        return iter(self._blobs)


def encode_index(packs: Sequence[tuple[PackInfo, Sequence[PackEntry]]]) -> bytes:
    parts = [_HEAD.pack(INDEX_MAGIC, INDEX_VERSION, len(packs))]
    for info, entries in packs:
        parts.append(_PACK.pack(bytes.fromhex(info.id), info.salt, info.type, len(entries)))
        parts.extend(ENTRY.pack(e.id, e.offset, e.length, e.raw_length, e.flags) for e in entries)
    return b"".join(parts)


def decode_index(data: bytes, what: str) -> list[tuple[PackInfo, list[PackEntry]]]:
    return [
        (info, [PackEntry(*f) for f in ENTRY.iter_unpack(table)])
        for info, table in decode_index_tables(data, what)
    ]


def decode_index_tables(data: bytes, what: str) -> list[tuple[PackInfo, memoryview]]:
    """The packs an index blob lists, each with its entries as stored (see ``add_table``)."""
    view = memoryview(data)
    try:
        magic, version, count = _HEAD.unpack_from(data)
        if magic != INDEX_MAGIC:
            raise IntegrityError(f"{what} is not an index")
        if version > INDEX_VERSION:
            raise UnsupportedVersion(
                f"{what} uses index version {version}; this haprotect reads up to {INDEX_VERSION}",
                hint="upgrade haprotect",
            )
        pos = _HEAD.size
        packs: list[tuple[PackInfo, memoryview]] = []
        for _ in range(count):
            pack_id, salt, blob_type, entry_count = _PACK.unpack_from(data, pos)
            pos += _PACK.size
            end = pos + entry_count * ENTRY.size
            if end > len(data):
                raise IntegrityError(f"{what} is truncated")
            packs.append((PackInfo(pack_id.hex(), BlobType(blob_type), salt), view[pos:end]))
            pos = end
    except (struct.error, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed ({exc})") from None
    return packs


def write_index(
    store: BlobStore, key: MasterKey, packs: Sequence[tuple[PackInfo, Sequence[PackEntry]]]
) -> int:
    """Store one index blob naming ``packs``; return its size."""
    blob = seal(key, SealedKind.INDEX, encode_index(packs))
    store.put(INDEX_PREFIX + blake3.blake3(blob).hexdigest(), blob)
    return len(blob)


def read_index_blob(
    store: BlobStore, key: MasterKey, name: str
) -> list[tuple[PackInfo, list[PackEntry]]]:
    what = f"index {name.removeprefix(INDEX_PREFIX)}"
    return decode_index(unseal(key, SealedKind.INDEX, store.get(name), what), what)


def read_index_tables(
    store: BlobStore, key: MasterKey, name: str
) -> list[tuple[PackInfo, memoryview]]:
    """Like :func:`read_index_blob`, each pack's entries as stored (see ``add_table``)."""
    what = f"index {name.removeprefix(INDEX_PREFIX)}"
    return decode_index_tables(unseal(key, SealedKind.INDEX, store.get(name), what), what)


def load_index(store: BlobStore, key: MasterKey) -> Index:
    """Read every index blob of the repository into one :class:`Index`."""
    index = Index()
    names = sorted(info.key for info in store.list(INDEX_PREFIX))
    with ThreadPoolExecutor(max_workers=_LOAD_THREADS) as pool:
        for packs in pool.map(lambda name: read_index_blob(store, key, name), names):
            for pack, entries in packs:
                index.add_pack(pack, entries)
    return index
