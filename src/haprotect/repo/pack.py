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
key is ``data/<id[:2]>/<id>``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from enum import IntEnum

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.crypto import (
    NONCE_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    MasterKey,
    counter_nonce,
    decompress,
    decrypt,
)
from haprotect.repo.errors import IntegrityError, UnsupportedVersion

PACK_MAGIC = b"HAPK"
PACK_VERSION = 1
DATA_PREFIX = "data/"
FLAG_ZSTD = 1
BLOB_OVERHEAD = NONCE_SIZE + TAG_SIZE
_HEADER = struct.Struct("<4sBB2x")
HEADER_SIZE = _HEADER.size + SALT_SIZE
ENTRY = struct.Struct("<32sIIIB3x")
_LENGTH = struct.Struct("<I")
_TRAILER_AAD = b"HAPK trailer"


class BlobType(IntEnum):
    DATA = 0
    TREE = 1


@dataclass(frozen=True, slots=True)
class PackEntry:
    id: bytes
    offset: int
    length: int
    raw_length: int
    flags: int


@dataclass(frozen=True, slots=True)
class PackInfo:
    id: str
    type: BlobType
    salt: bytes

    @property
    def key(self) -> str:
        return pack_key(self.id)


@dataclass(frozen=True, slots=True)
class FinishedPack:
    info: PackInfo
    data: bytes
    entries: tuple[PackEntry, ...]


def pack_key(pack_id: str) -> str:
    return f"{DATA_PREFIX}{pack_id[:2]}/{pack_id}"


def blob_aad(chunk_id: bytes, flags: int) -> bytes:
    return chunk_id + bytes((flags,))


class PackWriter:
    """Encrypts blobs into one pack at a time; not for concurrent use.

    The encrypted blobs are kept as they come and joined once, when the pack
    is sealed: a writer holds only what its pack holds so far (not a buffer
    the size of a full pack), and the sealed pack is the one copy.
    """

    def __init__(
        self, key: MasterKey, blob_type: BlobType, target_size: int, max_blob: int
    ) -> None:
        self._key = key
        self._type = blob_type
        self._target = target_size
        self._max_blob = max_blob
        self._pieces: list[bytes] = []
        self._salt = b""
        self._aead: AESGCM | None = None
        self._pos = 0
        self._entries: list[PackEntry] = []

    @property
    def empty(self) -> bool:
        return not self._entries

    @property
    def full(self) -> bool:
        return self._pos >= self._target

    def add(self, chunk_id: bytes, data: bytes | memoryview, raw_length: int, flags: int) -> int:
        """Append one blob; return its stored length."""
        if self._aead is None:
            self._start()
        assert self._aead is not None
        nonce = counter_nonce(len(self._entries))
        sealed = self._aead.encrypt(nonce, data, blob_aad(chunk_id, flags))
        length = NONCE_SIZE + len(sealed)
        self._pieces += (nonce, sealed)
        self._entries.append(PackEntry(chunk_id, self._pos, length, raw_length, flags))
        self._pos += length
        return length

    def finish(self) -> FinishedPack:
        """Seal the pack; the writer then starts a new one."""
        assert self._aead is not None
        nonce = counter_nonce(len(self._entries))
        table = b"".join(
            ENTRY.pack(e.id, e.offset, e.length, e.raw_length, e.flags) for e in self._entries
        )
        trailer = nonce + self._aead.encrypt(nonce, table, _TRAILER_AAD)
        pieces = self._pieces
        pieces += (trailer, _LENGTH.pack(len(trailer)))
        self._pieces = []
        data = b"".join(pieces)
        del pieces
        info = PackInfo(blake3.blake3(data).hexdigest(), self._type, self._salt)
        finished = FinishedPack(info, data, tuple(self._entries))
        self._aead = None
        self._entries = []
        self._pos = 0
        return finished

    def _start(self) -> None:
        self._salt = os.urandom(SALT_SIZE)
        self._aead = self._key.subkey(self._salt)
        self._pieces = [_HEADER.pack(PACK_MAGIC, PACK_VERSION, self._type) + self._salt]
        self._pos = HEADER_SIZE


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


def read_pack_header(data: bytes, pack_id: str) -> tuple[BlobType, bytes]:
    if len(data) < HEADER_SIZE + _LENGTH.size:
        raise IntegrityError(f"pack {pack_id} is truncated ({len(data)} bytes)")
    magic, version, blob_type = _HEADER.unpack_from(data)
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
    return kind, data[_HEADER.size : HEADER_SIZE]


def read_pack(key: MasterKey, data: bytes, pack_id: str) -> tuple[PackInfo, list[PackEntry]]:
    """The blobs a whole pack holds, from its own trailer (for check and index rebuild)."""
    if blake3.blake3(data).hexdigest() != pack_id:
        raise IntegrityError(f"pack {pack_id} does not match its id: it is damaged")
    blob_type, salt = read_pack_header(data, pack_id)
    (trailer_length,) = _LENGTH.unpack_from(data, len(data) - _LENGTH.size)
    start = len(data) - _LENGTH.size - trailer_length
    if start < HEADER_SIZE:
        raise IntegrityError(f"pack {pack_id} has a bad trailer length {trailer_length}")
    trailer = memoryview(data)[start : len(data) - _LENGTH.size]
    nonce = bytes(trailer[:NONCE_SIZE])
    table = decrypt(key.subkey(salt), nonce, trailer[NONCE_SIZE:], _TRAILER_AAD, f"pack {pack_id}")
    entries = [PackEntry(*fields) for fields in ENTRY.iter_unpack(table)]
    return PackInfo(pack_id, blob_type, salt), entries
