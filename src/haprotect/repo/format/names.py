"""Which keys of a store are the repository's blobs, and which are strays.

Every blob haprotect writes under ``index/``, ``snapshots/``, ``keys/`` and
``locks/`` is named by 64 lowercase hex digits, and every pack is
``data/<id[:2]>/<id>``. Anything else under those folders (``index/junk.tmp``,
an editor's backup file, a copy left by hand) is a *stray*: no reader takes
it for a blob, ``check`` names it, and haprotect never deletes it (it did
not write it). This module imports nothing heavy: key files are listed
before the key is derived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from haprotect.storage.base import BlobInfo, BlobStore

DATA = "data/"
FLAT_FOLDERS = ("index/", "snapshots/", "keys/", "locks/")
_HEX64 = re.compile(r"[0-9a-f]{64}")
SET_ASIDE_SUFFIX = ".damaged"
"""Added to a damaged pack's key when ``repo repair index`` sets it aside (a stray then)."""


def is_blob_id(name: str) -> bool:
    """A name as haprotect gives its blobs: 64 lowercase hex digits."""
    return _HEX64.fullmatch(name) is not None


def flat_id(prefix: str, key: str) -> str | None:
    """The id of ``key`` under the flat folder ``prefix``, or None for a stray."""
    name = key.removeprefix(prefix)
    return name if key.startswith(prefix) and is_blob_id(name) else None


def pack_id_of(key: str) -> str | None:
    """The id of the pack stored under ``key``, or None for a stray under ``data/``."""
    name = key.rsplit("/", 1)[-1]
    if is_blob_id(name) and key == f"{DATA}{name[:2]}/{name}":
        return name
    return None


def blob_ids(store: BlobStore, prefix: str) -> Iterator[BlobInfo]:
    """The blobs under the flat folder ``prefix`` whose names are blob ids (strays left out)."""
    return (info for info in store.list(prefix) if flat_id(prefix, info.key) is not None)


@dataclass(slots=True)
class Listing:
    """One folder's listing: its blobs by id (with their sizes) and its strays."""

    blobs: dict[str, int] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)


def list_folder(store: BlobStore, prefix: str) -> Listing:
    """List ``prefix`` (a flat folder or ``data/``) once, sorting blobs from strays."""
    found = Listing()
    for info in store.list(prefix):
        blob_id = pack_id_of(info.key) if prefix == DATA else flat_id(prefix, info.key)
        if blob_id is None:
            found.strays.append(info.key)
        else:
            found.blobs[blob_id] = info.size
    found.strays.sort()
    return found
