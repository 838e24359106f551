"""Plain blob stores (local directory, S3, memory) behind one small protocol.

A *blob store* keeps opaque blobs under ``/``-separated keys (base.py). A
*backend* opens one kind of store from a URL and is chosen by the URL's
scheme: ``file:///srv/repo`` (or a bare path), ``s3://bucket/prefix``,
``memory://``. Third-party backends join through the ``haprotect.storage``
entry point group. :func:`open_store` wraps what the backend returns in the
default wrappers (wrappers.py): a concurrency limit, and retries of
transient failures outside it, so a backing-off operation holds no slot.

The registry of backends (``backends``) is made on first use: importing a
store module (``haprotect.storage.local``) loads neither the entry points
machinery, the wrappers (and ``logging``), nor any backend's client library:
opening a repository starts deriving its key sooner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from haprotect.errors import UsageError
from haprotect.redact import display_url
from haprotect.storage.base import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    InvalidKeyError,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
)

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class StorageBackend:
    """Opens the stores of one URL scheme (``name``)."""

    name: str
    open: Callable[[str], BlobStore]
    summary: str = ""


if TYPE_CHECKING:
    from haprotect.registry import Registry

    backends: Registry[StorageBackend]


@cache
def _backends() -> Registry[StorageBackend]:
    from haprotect.registry import Registry

    return Registry("storage backend", "haprotect.storage")


def __getattr__(name: str) -> object:
    if name == "backends":
        return _backends()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _open_local(url: str) -> BlobStore:
    from haprotect.storage.local import LocalStore

    return LocalStore.from_url(url)


def _open_s3(url: str) -> BlobStore:
    from haprotect.storage.s3 import S3Store

    return S3Store.from_url(url)


def _open_memory(url: str) -> BlobStore:
    from haprotect.storage.memory import MemoryStore

    return MemoryStore(url)


@cache
def _register_builtins() -> None:
    backends = _backends()
    backends.register("file", StorageBackend("file", _open_local, "a local directory"))
    backends.register("s3", StorageBackend("s3", _open_s3, "an S3 bucket (haprotect[s3])"))
    backends.register("memory", StorageBackend("memory", _open_memory, "in-process, for tests"))


def url_scheme(url: str) -> str:
    """The scheme of a store URL; a bare path is ``file``."""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme if "://" in url else "file"


def backend_for(url: str) -> StorageBackend:
    _register_builtins()
    backends = _backends()
    scheme = url_scheme(url)
    if scheme not in backends.names():
        raise UsageError(
            f"{display_url(url)}: no storage backend for {scheme}://",
            hint="use a path, file:///path, s3://bucket/prefix or memory://",
        )
    return backends.get(scheme)


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
    "TransientStorageError",
    "backend_for",
    "backends",
    "open_store",
    "url_scheme",
]
