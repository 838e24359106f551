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

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, cast

from haprotect.errors import ExitCode, HaprotectError


class StorageError(HaprotectError):
    """Any failure of a blob store (exit 6 unless a subclass says otherwise)."""

    exit_code = ExitCode.STORAGE


class BlobNotFound(StorageError):
    """The key does not exist."""


class TransientStorageError(StorageError):
    """A failure that may succeed when tried again (timeouts, 5xx, throttling)."""


class PermanentStorageError(StorageError):
    """A failure that will not go away by retrying (permissions, bad bucket)."""


class InvalidKeyError(PermanentStorageError):
    """A key or prefix outside the key syntax (it could escape a store's root)."""


class StoreFeature(StrEnum):
    """An optional feature a store declares in ``features``: a method of the same name.

    Each is typed by one protocol below and used through the function of the
    same name, which falls back to the plain operations for a store without
    it. A wrapper declares what the store inside it declares.
    """

    STAGE = "stage"  #: :class:`Staging`
    PUT_BUFFER = "put_buffer"  #: :class:`BufferPutting`
    GET_RANGE_INTO = "get_range_into"  #: :class:`RangeReadingInto`
    REMOVE_LEFTOVERS = "remove_leftovers"  #: :class:`LeftoverRemoving`


NO_FEATURES: frozenset[StoreFeature] = frozenset()


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """One stored blob as a listing gives it: its key and size in bytes."""

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
    :class:`InvalidKeyError`. ``features`` are the optional features the
    store offers (:class:`StoreFeature`; :data:`NO_FEATURES` for most).
    """

    @property
    def url(self) -> str: ...

    @property
    def features(self) -> frozenset[StoreFeature]: ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...


class StagedBlob(Protocol):
    """A blob written piece by piece, then stored under its key in one step.

    ``write`` appends ``buffer[:length]``: ``buffer`` is an anonymous map
    (page-aligned) at least ``length`` rounded up to whole pages long, and
    every piece but the last is whole pages. ``commit`` stores what was
    written under ``key`` with the atomicity of ``put`` (a reader sees all of
    it or nothing); ``abort`` drops it. Either ends the staged blob.
    """

    def write(self, buffer: mmap.mmap, length: int) -> None: ...

    def commit(self, key: str) -> None: ...

    def abort(self) -> None: ...


class Staging(Protocol):
    """:attr:`StoreFeature.STAGE`: see :func:`stage`."""

    def stage(self, prefix: str) -> StagedBlob | None: ...


class BufferPutting(Protocol):
    """:attr:`StoreFeature.PUT_BUFFER`: see :func:`put_buffer`."""

    def put_buffer(self, key: str, buffer: mmap.mmap, length: int) -> None: ...


class RangeReadingInto(Protocol):
    """:attr:`StoreFeature.GET_RANGE_INTO`: see :func:`get_range_into`."""

    def get_range_into(
        self, key: str, offset: int, length: int, buffer: mmap.mmap
    ) -> memoryview: ...


class LeftoverRemoving(Protocol):
    """:attr:`StoreFeature.REMOVE_LEFTOVERS`: see :func:`remove_leftovers`."""

    def remove_leftovers(self) -> int: ...


def stage(store: BlobStore, prefix: str) -> StagedBlob | None:
    """A :class:`StagedBlob` for keys under ``prefix`` (``data``), if ``store`` offers them.

    A store offers them with :attr:`StoreFeature.STAGE`
    (:class:`~haprotect.storage.local.LocalStore` writes the pieces to a
    temporary file as they come, so a blob being built needs no memory of
    its size; wrappers pass it on). Others get None: build the blob in
    memory and ``put`` it.
    """
    if StoreFeature.STAGE not in store.features:
        return None
    return cast(Staging, store).stage(prefix)


def put_buffer(store: BlobStore, key: str, buffer: mmap.mmap, length: int) -> None:
    """Store the first ``length`` bytes of ``buffer`` under ``key`` (like ``put``).

    ``buffer`` is an anonymous map (page-aligned) at least ``length`` rounded
    up to whole pages long; the caller does not change it until this returns.
    A store with :attr:`StoreFeature.PUT_BUFFER` gets it as it is
    (:class:`~haprotect.storage.local.LocalStore` writes it straight to disk,
    around the page cache; wrappers pass it on), any other store a copy
    through ``put``.
    """
    if StoreFeature.PUT_BUFFER in store.features:
        cast(BufferPutting, store).put_buffer(key, buffer, length)
    else:
        store.put(key, buffer[:length])


def get_range_into(
    store: BlobStore, key: str, offset: int, length: int, buffer: mmap.mmap
) -> memoryview:
    """Up to ``length`` bytes of ``key`` from ``offset`` (like ``get_range``), as a view.

    ``buffer`` is an anonymous map at least ``length`` plus two pages long that
    the caller owns until it is done with the view. A store with
    :attr:`StoreFeature.GET_RANGE_INTO` reads into it (LocalStore reads
    large ranges straight from disk, around the page cache), any other store
    answers with ``get_range`` and the view is of its bytes.
    """
    if StoreFeature.GET_RANGE_INTO in store.features:
        return cast(RangeReadingInto, store).get_range_into(key, offset, length, buffer)
    return memoryview(store.get_range(key, offset, length))


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


def remove_leftovers(store: BlobStore) -> int:
    """Remove what killed writers left half-written in ``store``; how many there were.

    Only safe while no writer works on the store (prune holds the exclusive
    lock). A store with :attr:`StoreFeature.REMOVE_LEFTOVERS`
    (:class:`~haprotect.storage.local.LocalStore`: its ``.tmp~`` files;
    wrappers pass it on) removes them; any other has none to remove (an S3
    upload is whole or absent).
    """
    if StoreFeature.REMOVE_LEFTOVERS not in store.features:
        return 0
    return cast(LeftoverRemoving, store).remove_leftovers()
