"""The storage backends haprotect ships: one per URL scheme.

A backend is a small plug-in (:class:`StorageBackend`): the scheme it
answers to and a function that opens a store from a URL. Making one imports
no store module: ``open`` does, so choosing the ``memory`` backend never
loads boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from haprotect.storage.base import BlobStore


def url_scheme(url: str) -> str:
    """The scheme of a store URL; a bare path is ``file``."""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme if "://" in url else "file"


@dataclass(frozen=True, slots=True)
class StorageBackend:
    """Opens the stores of one URL scheme (``name``)."""

    name: str
    open: Callable[[str], BlobStore]
    summary: str = ""

    def applies_to(self, url: str) -> bool:
        return url_scheme(url) == self.name


def _open_local(url: str) -> BlobStore:
    from haprotect.storage.local import LocalStore

    return LocalStore.from_url(url)


def _open_s3(url: str) -> BlobStore:
    from haprotect.storage.s3 import S3Store

    return S3Store.from_url(url)


def _open_memory(url: str) -> BlobStore:
    from haprotect.storage.memory import MemoryStore

    return MemoryStore(url)


def local() -> StorageBackend:
    return StorageBackend("file", _open_local, "a local directory")


def s3() -> StorageBackend:
    return StorageBackend("s3", _open_s3, "an S3 bucket (haprotect[s3])")


def memory() -> StorageBackend:
    return StorageBackend("memory", _open_memory, "in-process, for tests")
