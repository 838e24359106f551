"""Indexing packs from their own header and trailer, without the index.

A pack describes itself: its header holds the blob type and salt, its
trailer (authenticated under the pack's key) lists every blob in it. Reading
those two ends (two ranged reads, one when the pack is small) gives the
pack's index entries. Opening a repository whose index is damaged indexes,
for reading only, the packs no intact index blob names; ``repo repair
index`` indexes every pack this way and writes the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.format.crypto import NONCE_SIZE, TAG_SIZE, MasterKey, decrypt
from haprotect.repo.format.pack import (
    ENTRY,
    HEADER_SIZE,
    LENGTH,
    TRAILER_AAD,
    PackEntry,
    PackInfo,
    pack_key,
    read_pack_header,
)
from haprotect.storage.base import BlobNotFound, BlobStore, PermanentStorageError

_TAIL = 64 * 1024
"""Bytes read from a pack's end at first: the trailer of about 1,300 blobs."""
_THREADS = 8

IndexedPack = tuple[PackInfo, list[PackEntry]]


@dataclass(frozen=True, slots=True)
class PackTables:
    """Packs read: their entries by id, and why each of the others could not be read."""

    packs: dict[str, IndexedPack]
    problems: dict[str, str]


def read_pack_table(store: BlobStore, key: MasterKey, pack_id: str, size: int) -> IndexedPack:
    """The blobs pack ``pack_id`` (``size`` bytes) lists in its trailer; IntegrityError if bad."""
    name = pack_key(pack_id)
    if size < HEADER_SIZE + NONCE_SIZE + TAG_SIZE + LENGTH.size:
        raise IntegrityError(f"pack {pack_id} is truncated ({size} bytes)")
    start = max(0, size - _TAIL)
    tail = store.get_range(name, start, size - start)
    head = tail[:HEADER_SIZE] if start == 0 else store.get_range(name, 0, HEADER_SIZE)
    if len(tail) != size - start or len(head) != HEADER_SIZE:
        raise IntegrityError(f"pack {pack_id} is shorter than listed")
    blob_type, salt = read_pack_header(head + bytes(LENGTH.size), pack_id)
    (length,) = LENGTH.unpack_from(tail, len(tail) - LENGTH.size)
    trailer_start = size - LENGTH.size - length
    if length < NONCE_SIZE + TAG_SIZE or trailer_start < HEADER_SIZE:
        raise IntegrityError(f"pack {pack_id} has a bad trailer length {length}")
    if trailer_start < start:
        trailer = store.get_range(name, trailer_start, length)
    else:
        trailer = tail[trailer_start - start : trailer_start - start + length]
    table = decrypt(
        key.subkey(salt),
        trailer[:NONCE_SIZE],
        memoryview(trailer)[NONCE_SIZE:],
        TRAILER_AAD,
        f"the trailer of pack {pack_id}",
    )
    if len(table) % ENTRY.size:
        raise IntegrityError(f"the trailer of pack {pack_id} is malformed")
    entries = [PackEntry(*fields) for fields in ENTRY.iter_unpack(table)]
    for e in entries:
        if e.offset < HEADER_SIZE or e.offset + e.length > trailer_start:
            raise IntegrityError(f"the trailer of pack {pack_id} lists a blob outside the pack")
    return PackInfo(pack_id, blob_type, salt), entries


def read_pack_tables(
    store: BlobStore, key: MasterKey, packs: Iterable[tuple[str, int]]
) -> PackTables:
    """:func:`read_pack_table` of each ``(pack id, size)``, on threads; a pack gone is skipped."""
    todo = sorted(packs)

    def one(item: tuple[str, int]) -> IndexedPack | str | None:
        try:
            return read_pack_table(store, key, *item)
        except BlobNotFound:
            return None
        except (IntegrityError, UnsupportedVersion, PermanentStorageError) as exc:
            return str(exc)

    found: dict[str, IndexedPack] = {}
    problems: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        for (pack_id, _), got in zip(todo, pool.map(one, todo), strict=True):
            if isinstance(got, str):
                problems[pack_id] = got
            elif got is not None:
                found[pack_id] = got
    return PackTables(found, problems)
