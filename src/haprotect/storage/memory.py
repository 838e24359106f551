"""An in-process blob store, for unit tests of the layers above storage."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from haprotect.redact import display_url
from haprotect.storage.base import (
    NO_FEATURES,
    BlobInfo,
    BlobNotFound,
    StoreFeature,
    check_key,
    check_prefix,
)


class MemoryStore:
    """A blob store in a dict, for tests; it declares no optional feature."""

    features: frozenset[StoreFeature] = NO_FEATURES

    def __init__(self, url: str = "memory://") -> None:
        self._url = url
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._url

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._lock:
            self._blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise BlobNotFound(f"{display_url(self._url)}{key}: no such blob") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"negative range {offset}+{length} of {key}")
        return self.get(key)[offset : offset + length]

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._blobs

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            if self._blobs.pop(key, None) is None:
                raise BlobNotFound(f"{display_url(self._url)}{key}: no such blob")

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        with self._lock:
            items = [BlobInfo(k, len(v)) for k, v in self._blobs.items() if k.startswith(prefix)]
        return iter(items)
