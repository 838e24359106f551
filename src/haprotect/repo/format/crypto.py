"""Keys, chunk ids and authenticated encryption of repository blobs.

Terms:

master key
    The random secrets of a repository, stored only inside key files
    (:mod:`haprotect.repo.format.keysealing`): ``data_key`` (encryption), ``id_key``
    (keyed BLAKE3 chunk ids, so ids reveal nothing about content to someone
    without the key) and ``chunker_seed`` (the gear table of the content
    defined chunker, so chunk boundaries do not fingerprint known files).
subkey
    Every pack and every sealed blob has a random 32-byte salt; its AES-256-GCM
    key is ``BLAKE3-derive_key(SUBKEY_CONTEXT, data_key || salt)``. One key
    thus encrypts at most one pack, which keeps every key far below the GCM
    limit on messages per key, and lets nonces be a simple counter.
sealed blob
    A standalone encrypted blob (index, snapshot): ``HASB`` header, salt,
    nonce, ciphertext and tag; the header is the associated data. Its layout is
    in docs/design/repository-format.md.
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from enum import IntEnum

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.errors import IntegrityError, UnsupportedVersion
from haprotect.repo.format.keyfile import KEY_SIZE

SALT_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
ID_SIZE = 32
SUBKEY_CONTEXT = "haprotect 2025-01 repository subkey v1"
CONFIG_MAC_CONTEXT = "haprotect 2025-01 config mac v1"

SEALED_MAGIC = b"HASB"
SEALED_VERSION = 1
_SEALED_HEADER = struct.Struct("<4sBBBx")
SEALED_OVERHEAD = _SEALED_HEADER.size + SALT_SIZE + NONCE_SIZE + TAG_SIZE
_FLAG_ZSTD = 1


class SealedKind(IntEnum):
    """What a sealed blob holds; authenticated with it, so one kind cannot pass for another."""

    INDEX = 1
    SNAPSHOT = 2
    SUMMARIES = 3


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A repository's master key, and what derives from it: chunk ids, pack keys, the config MAC."""

    data_key: bytes
    id_key: bytes
    chunker_seed: int

    @classmethod
    def generate(cls) -> MasterKey:
        seed = int.from_bytes(os.urandom(8), "little") >> 1
        return cls(os.urandom(KEY_SIZE), os.urandom(KEY_SIZE), seed or 1)

    def chunk_id(self, data: bytes | bytearray | memoryview) -> bytes:
        return blake3.blake3(data, key=self.id_key).digest()

    def subkey(self, salt: bytes) -> AESGCM:
        material = self.data_key + salt
        return AESGCM(blake3.blake3(material, derive_key_context=SUBKEY_CONTEXT).digest())

    def config_mac(self, data: bytes) -> str:
        mac_key = blake3.blake3(self.id_key, derive_key_context=CONFIG_MAC_CONTEXT).digest()
        return blake3.blake3(data, key=mac_key).hexdigest()


def counter_nonce(counter: int) -> bytes:
    return counter.to_bytes(NONCE_SIZE, "little")


def decrypt(
    aead: AESGCM, nonce: bytes, ciphertext: bytes | memoryview, aad: bytes, what: str
) -> bytes:
    """Decrypt and authenticate, or raise IntegrityError naming ``what``."""
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise IntegrityError(
            f"{what} failed authentication: it was modified or corrupted",
            hint="run `haprotect check` and restore the damaged blob from a copy",
        ) from None


def seal(key: MasterKey, kind: SealedKind, plaintext: bytes, *, level: int = 3) -> bytes:
    """Compress (when it helps) and encrypt a standalone blob."""
    flags = 0
    compressed = zstandard.ZstdCompressor(level=level).compress(plaintext)
    if len(compressed) < len(plaintext):
        plaintext, flags = compressed, _FLAG_ZSTD
    header = _SEALED_HEADER.pack(SEALED_MAGIC, SEALED_VERSION, kind, flags)
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    return header + salt + nonce + key.subkey(salt).encrypt(nonce, plaintext, header)


def unseal(key: MasterKey, kind: SealedKind, blob: bytes, what: str) -> bytes:
    """Authenticate, decrypt and decompress a sealed blob."""
    if len(blob) < SEALED_OVERHEAD:
        raise IntegrityError(f"{what} is truncated ({len(blob)} bytes)")
    magic, version, blob_kind, flags = _SEALED_HEADER.unpack_from(blob)
    if magic != SEALED_MAGIC:
        raise IntegrityError(f"{what} is not a haprotect blob")
    if version > SEALED_VERSION:
        raise UnsupportedVersion(
            f"{what} uses blob version {version}; this haprotect reads up to {SEALED_VERSION}",
            hint="upgrade haprotect",
        )
    if blob_kind != kind:
        raise IntegrityError(f"{what} holds a {SealedKind(blob_kind).name.lower()} blob")
    start = _SEALED_HEADER.size
    salt = blob[start : start + SALT_SIZE]
    nonce = blob[start + SALT_SIZE : start + SALT_SIZE + NONCE_SIZE]
    body = memoryview(blob)[start + SALT_SIZE + NONCE_SIZE :]
    plaintext = decrypt(key.subkey(salt), nonce, body, blob[:start], what)
    if flags & _FLAG_ZSTD:
        return decompress(plaintext, what)
    return plaintext


_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor: setting one up costs more than a small blob."""
    found: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if found is None:
        found = _local.zstd = zstandard.ZstdDecompressor()
    return found


def decompress(data: bytes | memoryview, what: str, size: int | None = None) -> bytes:
    try:
        if size is None:
            return _decompressor().decompress(data)
        return _decompressor().decompress(data, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from None
