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
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import blake3

from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.format.crypto import MasterKey, SealedKind, seal, unseal
from haprotect.repo.format.pack import ENTRY, BlobType, PackEntry, PackInfo
from haprotect.storage.base import BlobStore

INDEX_PREFIX = "index/"
INDEX_MAGIC = b"HAIX"
INDEX_VERSION = 1
_HEAD = struct.Struct("<4sB3xI")
_PACK = struct.Struct("<32s32sB3xI")
_ID = struct.Struct("<32s16x")
"""The chunk id of an :data:`~haprotect.repo.format.pack.ENTRY`."""


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where one blob is stored: its pack, byte range and sizes, and its flags."""

    pack: PackInfo
    offset: int
    length: int
    raw_length: int
    flags: int


class Locator(Protocol):
    """What reading blobs needs of an index: where a chunk is."""

    def lookup(self, chunk_id: bytes) -> BlobLocation | None: ...


class Layered:
    """An index, then packs indexed apart from it: both live, read in that order.

    How packs no index blob names are read (:mod:`haprotect.repo.format.indexset`)
    without copying the index: what a backup adds to the index is found at
    once, and nothing a backup deduplicates against changes.
    """

    def __init__(self, first: Index, then: Index) -> None:
        self.first = first
        self.then = then

    def lookup(self, chunk_id: bytes) -> BlobLocation | None:
        found = self.first.lookup(chunk_id)
        return found if found is not None else self.then.lookup(chunk_id)


class Index:
    """Chunk id → location, for every chunk of the repository.

    Kept compact: the entries as index blobs and pack trailers store them
    (48 bytes each, back to back), the pack of each, and a dictionary from
    chunk id to entry number. A million chunks take about 120 MB, not the
    twice as much a tuple per location would, and since the dictionary
    holds only bytes and integers, the garbage collector never walks it.
    """

    def __init__(self) -> None:
        self._packs: list[PackInfo] = []
        self._pack_numbers: dict[str, int] = {}
        self._entries = bytearray()
        self._pack_of = array("I")
        self._blobs: dict[bytes, int] = {}

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
        self.add_table(info, entry_table(entries))

    def add_table(self, info: PackInfo, table: bytes | bytearray | memoryview) -> None:
        """Add a pack's entries as stored (48-byte records); a known chunk keeps its place.

        A pack listed again (by two index blobs, after an interrupted prune)
        adds nothing: its id is the hash of its bytes, trailer included, so
        its entries are the same.
        """
        if info.id in self._pack_numbers:
            return
        number = self._pack_number(info)
        count = len(table) // ENTRY.size
        if not count:
            return
        first = len(self._pack_of)
        self._entries += table[: count * ENTRY.size]
        self._pack_of += array("I", [number]) * count
        ids = [fields[0] for fields in _ID.iter_unpack(table[: count * ENTRY.size])]
        blobs = self._blobs
        known = blobs.keys() & ids
        kept = {chunk_id: blobs[chunk_id] for chunk_id in known} if known else None
        # in reverse, so that the first of a chunk listed twice in the table wins
        blobs.update(zip(reversed(ids), range(first + count - 1, first - 1, -1), strict=True))
        if kept:
            blobs.update(kept)

    def copy(self) -> Index:
        """An index with the same entries, to which packs can be added apart."""
        other = Index()
        other._packs = list(self._packs)
        other._pack_numbers = dict(self._pack_numbers)
        other._entries = bytearray(self._entries)
        other._pack_of = array("I", self._pack_of)
        other._blobs = dict(self._blobs)
        return other

    def lookup(self, chunk_id: bytes) -> BlobLocation | None:
        number = self._blobs.get(chunk_id)
        if number is None:
            return None
        _, offset, length, raw_length, flags = ENTRY.unpack_from(self._entries, number * ENTRY.size)
        return BlobLocation(self._packs[self._pack_of[number]], offset, length, raw_length, flags)

    def raw_length(self, chunk_id: bytes) -> int:
        raw_length: int = ENTRY.unpack_from(self._entries, self._blobs[chunk_id] * ENTRY.size)[3]
        return raw_length

    def packs(self) -> Sequence[PackInfo]:
        return tuple(self._packs)

    def chunk_ids(self) -> Iterator[bytes]:
        return iter(self._blobs)


def entry_table(entries: Iterable[PackEntry]) -> bytes:
    """Pack entries as index blobs and pack trailers store them."""
    return b"".join([ENTRY.pack(e.id, e.offset, e.length, e.raw_length, e.flags) for e in entries])


def encode_index(packs: Sequence[tuple[PackInfo, bytes]]) -> bytes:
    """The plaintext of an index blob naming ``packs``, each with its :func:`entry_table`."""
    parts = [_HEAD.pack(INDEX_MAGIC, INDEX_VERSION, len(packs))]
    for info, table in packs:
        parts.append(
            _PACK.pack(bytes.fromhex(info.id), info.salt, info.type, len(table) // ENTRY.size)
        )
        parts.append(table)
    return b"".join(parts)


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


def write_index(store: BlobStore, key: MasterKey, packs: Sequence[tuple[PackInfo, bytes]]) -> int:
    """Store one index blob naming ``packs`` (each with its entry table); return its size."""
    blob = seal(key, SealedKind.INDEX, encode_index(packs))
    store.put(INDEX_PREFIX + blake3.blake3(blob).hexdigest(), blob)
    return len(blob)


def read_index_tables(
    store: BlobStore, key: MasterKey, name: str, *, misnamed: set[str] | None = None
) -> list[tuple[PackInfo, memoryview]]:
    """The packs an index blob lists, each with its entries as stored (see ``add_table``).

    With ``misnamed``, the blob's name is added to it when its bytes do not
    hash to it (a copy or a rename: what it lists is authenticated all the same).
    """
    data = store.get(name)
    what = f"index {name.removeprefix(INDEX_PREFIX)}"
    if misnamed is not None and blake3.blake3(data).hexdigest() != name.removeprefix(INDEX_PREFIX):
        misnamed.add(name)
    return decode_index_tables(unseal(key, SealedKind.INDEX, data, what), what)
