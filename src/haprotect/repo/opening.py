"""Opening a repository, with its key derived while the repository's modules load.

Deriving the key (scrypt, about 0.2 s) is the longest part of opening, and
it runs outside Python's global lock. :func:`open_repository` reads the
config and starts the derivation (:class:`~haprotect.repo.keyopening.KeyOpening`)
from modules that import nothing heavy, and only then imports the rest of
the repository (``cryptography``, the compressor, the backup's modules), so
that importing them overlaps the derivation instead of preceding it. A
program that backs up once and exits (``haprotect repo backup``) should open
the repository through this module before it imports
:class:`~haprotect.repo.repository.Repository` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from haprotect.repo.keyopening import start_opening

if TYPE_CHECKING:
    from haprotect.repo.repository import Repository
    from haprotect.storage.base import BlobStore


def open_repository(
    store: BlobStore, passphrase: str, *, lenient_index: bool = False, background: bool = False
) -> Repository:
    """:meth:`Repository.open <haprotect.repo.repository.Repository.open>`."""
    config, opened = start_opening(
        store, passphrase, lenient_index=lenient_index, background=background
    )
    # imported now: in the background, this overlaps the derivation
    from haprotect.repo.repository import Repository

    return Repository(store, config, opened, lenient_index=lenient_index)
