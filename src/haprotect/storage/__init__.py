"""Plain blob stores (local directory, S3, memory) behind one small protocol.

A *blob store* keeps opaque blobs under ``/``-separated keys (base.py). A
*backend* opens one kind of store from a URL and is chosen by the URL's
scheme: ``file:///srv/repo`` (or a bare path), ``s3://bucket/prefix``,
``memory://``. Third-party backends join through the ``haprotect.storage``
entry point group. :func:`open_store` wraps what the backend returns in the
default wrappers (wrappers.py): a concurrency limit, and retries of
transient failures outside it, so a backing-off operation holds no slot.

The registry of backends (``backends``) reads its entry points on first use:
importing a store module (``haprotect.storage.local``) loads neither the
entry points machinery, the wrappers (and ``logging``), nor any backend's
client library: opening a repository starts deriving its key sooner.
"""

from __future__ import annotations

from haprotect.errors import UsageError
from haprotect.redact import display_url
from haprotect.registry import Builtin, Registry
from haprotect.storage.backends import StorageBackend, url_scheme
from haprotect.storage.base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    InvalidKeyError,
    PermanentStorageError,
    StorageError,
    StoreFeature,
    TransientStorageError,
)

DEFAULT_CONCURRENCY = 8

#: The backends, by URL scheme; ``select(url)`` finds the one that opens a URL.
backends: Registry[StorageBackend, str] = Registry(
    "storage backend",
    "haprotect.storage",
    (
        Builtin("file", "haprotect.storage.backends:local"),
        Builtin("s3", "haprotect.storage.backends:s3"),
        Builtin("memory", "haprotect.storage.backends:memory"),
    ),
)


def backend_for(url: str) -> StorageBackend:
    """The backend that opens ``url`` (UsageError if none does)."""
    backend = backends.select(url)
    if backend is None:
        raise UsageError(
            f"{display_url(url)}: no storage backend for {url_scheme(url)}://",
            hint="use a path, file:///path, s3://bucket/prefix or memory://",
        )
    return backend


def open_store(
    url: str, *, concurrency: int = DEFAULT_CONCURRENCY, retry: bool = True
) -> BlobStore:
    """Open the store ``url`` names, wrapped in a concurrency limit and retries."""
    from haprotect.storage.wrappers import ConcurrencyLimitedStore, RetryingStore

    store: BlobStore = backend_for(url).open(url)
    store = ConcurrencyLimitedStore(store, concurrency)
    return RetryingStore(store) if retry else store


__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "InvalidKeyError",
    "PermanentStorageError",
    "StorageBackend",
    "StorageError",
    "StoreFeature",
    "TransientStorageError",
    "backend_for",
    "backends",
    "open_store",
    "url_scheme",
]
