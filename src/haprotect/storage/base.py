"""The blob store protocol that every storage backend implements.

A backend stores opaque, immutable blobs under ``/``-separated keys
(``data/3f/3f2a...``, ``index/...``, ``snapshots/...``, ``locks/...``,
``config``). It does no caching, retrying, rate limiting or logging: those
are wrappers (see wrappers.py). A backend's only other duty is to classify
its failures as :class:`BlobNotFound`, :class:`TransientStorageError` (worth
retrying) or :class:`PermanentStorageError`.

Keys are made of segments of ASCII letters, digits, ``.``, ``_`` and ``-``
joined by single ``/``: no leading or trailing slash, no empty, ``.`` or
``..`` segment. The set is small on purpose: every such key is a safe
relative path on any filesystem and needs no escaping in an S3 request, and
no key can name a backend's temporary files (LocalStore's end in ``~``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from haprotect.errors import HaprotectError


class StorageError(HaprotectError):
    exit_code = 6


class BlobNotFound(StorageError):
    """The key does not exist."""


class TransientStorageError(StorageError):
    """A failure that may succeed when tried again (timeouts, 5xx, throttling)."""


class PermanentStorageError(StorageError):
    """A failure that will not go away by retrying (permissions, bad bucket)."""


class InvalidKeyError(PermanentStorageError):
    """A key or prefix outside the key syntax (it could escape a store's root)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int


class BlobStore(Protocol):
    """Immutable blobs under string keys.

    ``put`` is atomic: a reader sees the whole blob or none of it, even if the
    writer is killed. ``put`` of an existing key replaces it (only used for
    mutable objects such as lock files). ``get_range`` returns up to
    ``length`` bytes from ``offset``: fewer at the end of the blob, none past
    it. ``get``, ``get_range`` and ``delete`` of a missing key raise
    :class:`BlobNotFound`. ``list`` yields the blobs whose keys start with
    ``prefix`` (a plain string prefix, not only whole segments), in no
    particular order. A key or prefix outside the key syntax raises
    :class:`InvalidKeyError`.
    """

    @property
    def url(self) -> str: ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...


MAX_KEY_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def check_key(key: str) -> str:
    """Return ``key`` if it follows the key syntax, else raise InvalidKeyError."""
    if not key:
        raise InvalidKeyError("an empty string is not a blob key")
    _check_segments(key, key.split("/"))
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if some valid key could start with it.

    The last segment may be partial or empty (``data/3f`` and ``data/`` are
    both prefixes), the others must be whole segments.
    """
    if not prefix:
        return prefix
    *whole, last = prefix.split("/")
    if whole:
        _check_segments(prefix, whole)
    if last and (len(last) > MAX_SEGMENT_LENGTH or not _SEGMENT.fullmatch(last)):
        raise InvalidKeyError(f"{prefix!r} is not a blob key prefix")
    return prefix


def _check_segments(key: str, segments: list[str]) -> None:
    if len(key.encode()) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"blob key {key[:60]!r}... is longer than {MAX_KEY_LENGTH} bytes")
    for segment in segments:
        if (
            segment in (".", "..")
            or len(segment) > MAX_SEGMENT_LENGTH
            or not _SEGMENT.fullmatch(segment)
        ):
            raise InvalidKeyError(
                f"{key!r} is not a blob key (segments of letters, digits, '.', '_', '-'"
                " joined by '/', no '.' or '..')"
            )
