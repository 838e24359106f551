"""Checking one pack against the index: its size, its trailer, and (reading it) its blobs.

The index lists every blob of a pack, so it fixes the pack's exact size
(header, blobs, trailer, length) and its trailer's plaintext. The cheap
check compares the size the store lists and reads only the trailer (one
ranged read); the full check reads the whole pack and authenticates,
decompresses and hashes every blob, for all packs or a :class:`Subset`.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import blake3

from haprotect.errors import UsageError
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.crypto import NONCE_SIZE, TAG_SIZE, MasterKey, decrypt
from haprotect.repo.format.pack import (
    ENTRY,
    HEADER_SIZE,
    TRAILER_AAD,
    PackEntry,
    PackInfo,
    open_blob,
    read_pack_header,
)
from haprotect.storage.base import BlobNotFound, BlobStore

_LENGTH = struct.Struct("<I")


def trailer_size(entries: Sequence[PackEntry]) -> int:
    return NONCE_SIZE + len(entries) * ENTRY.size + TAG_SIZE


def expected_size(entries: Sequence[PackEntry]) -> int:
    """The size of a pack holding exactly ``entries``."""
    return HEADER_SIZE + sum(e.length for e in entries) + trailer_size(entries) + _LENGTH.size


def _table(entries: Sequence[PackEntry]) -> bytes:
    return b"".join(ENTRY.pack(e.id, e.offset, e.length, e.raw_length, e.flags) for e in entries)


@dataclass(frozen=True, slots=True)
class PackProblem:
    """What is wrong with a pack, and which of its chunks can no longer be read."""

    message: str
    lost: frozenset[bytes] = frozenset()


def check_structure(
    store: BlobStore, key: MasterKey, info: PackInfo, entries: Sequence[PackEntry], size: int
) -> PackProblem | None:
    """Size and trailer of a stored pack against the index, without reading its blobs."""
    expected = expected_size(entries)
    if size != expected:
        lost = frozenset(e.id for e in entries if e.offset + e.length > size - _LENGTH.size)
        return PackProblem(
            f"pack {info.id} is {size} bytes, the index implies {expected}"
            f"{' (truncated)' if size < expected else ''}",
            lost,
        )
    length = trailer_size(entries)
    try:
        tail = store.get_range(info.key, size - length - _LENGTH.size, length + _LENGTH.size)
    except BlobNotFound:
        return _vanished(info, entries)
    (declared,) = _LENGTH.unpack_from(tail, len(tail) - _LENGTH.size)
    if declared != length:
        return PackProblem(
            f"pack {info.id} declares a {declared}-byte trailer, the index implies {length}"
        )
    try:
        table = decrypt(
            key.subkey(info.salt),
            tail[:NONCE_SIZE],
            memoryview(tail)[NONCE_SIZE:length],
            TRAILER_AAD,
            f"the trailer of pack {info.id}",
        )
    except IntegrityError as exc:
        return PackProblem(str(exc))
    if table != _table(entries):
        return PackProblem(f"the trailer of pack {info.id} lists other blobs than the index")
    return None


def check_data(
    store: BlobStore, key: MasterKey, info: PackInfo, entries: Sequence[PackEntry]
) -> tuple[int, PackProblem | None]:
    """Read a whole pack and verify every blob; return the bytes read and the problem."""
    try:
        data = store.get(info.key)
    except BlobNotFound:
        return 0, _vanished(info, entries)
    problems: list[str] = []
    if blake3.blake3(data).hexdigest() != info.id:
        problems.append("does not match its id")
    try:
        read_pack_header(data, info.id)
    except IntegrityError as exc:
        problems.append(f"bad header ({exc})")
    aead = key.subkey(info.salt)
    lost: set[bytes] = set()
    view = memoryview(data)
    for e in entries:
        stored = view[e.offset : e.offset + e.length]
        try:
            if len(stored) != e.length:
                raise IntegrityError("truncated")
            open_blob(aead, key, stored, e.id, e.flags, e.raw_length, info.id)
        except IntegrityError:
            lost.add(e.id)
    if lost:
        problems.append(f"{len(lost)} of {len(entries)} blobs fail verification")
    if not problems:
        return len(data), None
    message = f"pack {info.id} is damaged: {'; '.join(problems)}"
    return len(data), PackProblem(message, frozenset(lost))


def _vanished(info: PackInfo, entries: Sequence[PackEntry]) -> PackProblem:
    return PackProblem(f"pack {info.id} vanished while checking", frozenset(e.id for e in entries))


@dataclass(frozen=True, slots=True)
class Subset:
    """Which packs ``--read-data`` reads: a random ``fraction``, or ``part`` n of m."""

    fraction: float | None = None
    part: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> Subset:
        text = text.strip()
        hint = "write N% (a random N percent of the packs) or N/M (part N of M, by pack id)"
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 < percent <= 100:
                    return cls(fraction=percent / 100)
            elif "/" in text:
                n, m = (int(x) for x in text.split("/", 1))
                if 1 <= n <= m:
                    return cls(part=(n, m))
        except ValueError:
            pass
        raise UsageError(f"{text!r} is not a subset of packs", hint=hint)

    def select(self, pack_ids: Iterable[str]) -> list[str]:
        ids = sorted(pack_ids)
        if self.part is not None:
            n, m = self.part
            return [p for p in ids if int(p[:8], 16) % m == n - 1]
        if self.fraction is not None and ids:
            return sorted(random.sample(ids, max(1, math.ceil(len(ids) * self.fraction))))
        return ids
