"""The repository: deduplicated, compressed, encrypted snapshots in a blob store.

Terms:

chunk
    A piece of a file, cut by content (or in fixed blocks for page-structured
    files). Its id is the keyed BLAKE3 hash of its bytes; equal chunks are
    stored once.
blob
    A chunk as stored: compressed with zstd when that helps, encrypted with
    AES-256-GCM. Data blobs hold file content, tree blobs the node stream.
pack
    One stored object holding many blobs (about 16 MiB), with an encrypted
    trailer listing them.
index
    Which pack holds each chunk, and where; written after the packs.
snapshot
    One backup: metadata and the tree chunk ids; written last, so it is
    visible only when complete.
parent
    The earlier snapshot a backup is a delta of: files unchanged since it
    are not read again (the files cache) and chunks it stored are not stored
    again (deduplication).

Entry point: :class:`Repository` (``init``, ``open``, ``backup``,
``snapshots``, ``restore``). The format is in docs/design/repository-format.md.
"""

from __future__ import annotations

from haprotect.repo.archiver import BackupOptions
from haprotect.repo.config import ChunkerParams
from haprotect.repo.keys import KdfParams
from haprotect.repo.repository import Repository
from haprotect.repo.restorer import RestoreOptions

__all__ = ["BackupOptions", "ChunkerParams", "KdfParams", "Repository", "RestoreOptions"]
