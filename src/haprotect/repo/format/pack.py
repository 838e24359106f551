"""Packs: many encrypted blobs in one object, sized for object storage.

Layout (all integers little-endian; details in docs/design/repository-format.md)::

    header   "HAPK" | version u8 | type u8 | 2 reserved | salt[32]          40 bytes
    blob*    nonce[12] | AES-256-GCM(plaintext) | tag[16]
             associated data: chunk id[32] | flags u8
    trailer  nonce[12] | AES-256-GCM(entry*) | tag[16]    associated data "HAPK trailer"
             entry: id[32] offset u32 length u32 raw_length u32 flags u8 3 reserved
    length   u32: the trailer's length

The AES key is the pack's subkey (:meth:`MasterKey.subkey` of the salt) and
nonces count blobs from 0 (the trailer takes the next one). The pack's id is
the unkeyed BLAKE3 of its bytes, so anyone can check a pack is whole; its
key is ``data/<id[:2]>/<id>``. This module holds the format and reads it;
:mod:`haprotect.repo.blobs.packwriter` writes it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.format.crypto import (
    NONCE_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    MasterKey,
    decompress,
    decrypt,
)

PACK_MAGIC = b"HAPK"
PACK_VERSION = 1
DATA_PREFIX = "data/"
FLAG_ZSTD = 1
BLOB_OVERHEAD = NONCE_SIZE + TAG_SIZE
HEADER = struct.Struct("<4sBB2x")
HEADER_SIZE = HEADER.size + SALT_SIZE
ENTRY = struct.Struct("<32sIIIB3x")
LENGTH = struct.Struct("<I")
TRAILER_AAD = b"HAPK trailer"


class BlobType(IntEnum):
    """What the blobs of a pack hold: file data or trees (one type per pack, in its header)."""

    DATA = 0
    TREE = 1


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One blob as a pack's trailer lists it: chunk id, byte range, sizes, flags."""

    id: bytes
    offset: int
    length: int
    raw_length: int
    flags: int


@dataclass(frozen=True, slots=True)
class PackInfo:
    """A pack as the index knows it: its id, blob type and the salt of its key."""

    id: str
    type: BlobType
    salt: bytes

    @property
    def key(self) -> str:
        return pack_key(self.id)


def pack_key(pack_id: str) -> str:
    return f"{DATA_PREFIX}{pack_id[:2]}/{pack_id}"


def blob_aad(chunk_id: bytes, flags: int) -> bytes:
    return chunk_id + bytes((flags,))


def open_blob(
    aead: AESGCM,
    key: MasterKey,
    stored: bytes | memoryview,
    chunk_id: bytes,
    flags: int,
    raw_length: int,
    pack_id: str,
) -> bytes:
    """Decrypt, decompress and verify one blob read from pack ``pack_id``."""
    what = f"blob {chunk_id.hex()[:16]} in pack {pack_id}"
    nonce = bytes(stored[:NONCE_SIZE])
    plain = decrypt(aead, nonce, stored[NONCE_SIZE:], blob_aad(chunk_id, flags), f"pack {pack_id}")
    if flags & FLAG_ZSTD:
        plain = decompress(plain, what, raw_length)
    if len(plain) != raw_length or key.chunk_id(plain) != chunk_id:
        raise IntegrityError(
            f"{what} does not match its id",
            hint="run `haprotect check` and restore the damaged pack from a copy",
        )
    return plain


def stored_payload(
    aead: AESGCM, key: MasterKey, data: bytes | memoryview, entry: PackEntry, pack_id: str
) -> bytes:
    """The stored (maybe compressed) plaintext of the blob ``entry`` of a pack's bytes, verified.

    What moving a blob to another pack needs (prune's repacking, repair's
    salvage): it is authenticated and checked against its id, but stays
    compressed, to be encrypted again as it is.
    """
    what = f"blob {entry.id.hex()[:16]} in pack {pack_id}"
    stored = memoryview(data)[entry.offset : entry.offset + entry.length]
    if len(stored) != entry.length:
        raise IntegrityError(f"pack {pack_id} is truncated")
    nonce = bytes(stored[:NONCE_SIZE])
    payload = decrypt(
        aead, nonce, stored[NONCE_SIZE:], blob_aad(entry.id, entry.flags), f"pack {pack_id}"
    )
    plain = decompress(payload, what, entry.raw_length) if entry.flags & FLAG_ZSTD else payload
    if len(plain) != entry.raw_length or key.chunk_id(plain) != entry.id:
        raise IntegrityError(f"{what} does not match its id")
    return payload


def read_pack_header(data: bytes, pack_id: str) -> tuple[BlobType, bytes]:
    if len(data) < HEADER_SIZE + LENGTH.size:
        raise IntegrityError(f"pack {pack_id} is truncated ({len(data)} bytes)")
    magic, version, blob_type = HEADER.unpack_from(data)
    if magic != PACK_MAGIC:
        raise IntegrityError(f"pack {pack_id} is not a haprotect pack")
    if version > PACK_VERSION:
        raise UnsupportedVersion(
            f"pack {pack_id} uses pack version {version}; this haprotect reads up to "
            f"{PACK_VERSION}",
            hint="upgrade haprotect",
        )
    try:
        kind = BlobType(blob_type)
    except ValueError:
        raise IntegrityError(f"pack {pack_id} has unknown blob type {blob_type}") from None
    return kind, data[HEADER.size : HEADER_SIZE]


def read_pack(key: MasterKey, data: bytes, pack_id: str) -> tuple[PackInfo, list[PackEntry]]:
    """The blobs a whole pack holds, from its own trailer (for check and index rebuild)."""
    if blake3.blake3(data).hexdigest() != pack_id:
        raise IntegrityError(f"pack {pack_id} does not match its id: it is damaged")
    blob_type, salt = read_pack_header(data, pack_id)
    (trailer_length,) = LENGTH.unpack_from(data, len(data) - LENGTH.size)
    start = len(data) - LENGTH.size - trailer_length
    if start < HEADER_SIZE:
        raise IntegrityError(f"pack {pack_id} has a bad trailer length {trailer_length}")
    trailer = memoryview(data)[start : len(data) - LENGTH.size]
    nonce = bytes(trailer[:NONCE_SIZE])
    table = decrypt(key.subkey(salt), nonce, trailer[NONCE_SIZE:], TRAILER_AAD, f"pack {pack_id}")
    entries = [PackEntry(*fields) for fields in ENTRY.iter_unpack(table)]
    return PackInfo(pack_id, blob_type, salt), entries
