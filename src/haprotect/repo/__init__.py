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
lock
    Who is using the repository: backups, restores, forget and check share
    it, prune holds it alone (lock.py).
forget, retention
    Removing snapshot records, by id or by a keep policy applied to each
    group of alike snapshots (maintenance/retention.py); their data stays until a prune.
prune
    Deleting and repacking packs so that only what snapshots use remains,
    in an order that survives a crash at any point (maintenance/prune.py).
copy
    A snapshot copied from another repository (copy/copier.py): the same
    nodes with this repository's chunk ids, only missing chunks stored, and
    ``copied_from`` (the original's id) in its metadata.
check
    Verifying structure (and with ``read_data`` every blob), naming the
    snapshots and files each problem affects (maintenance/check.py).

Layout: :mod:`.format` (what is stored), :mod:`.blobs` (chunks to stored
blobs and back), :mod:`.backup`, :mod:`.restore`, :mod:`.maintenance`
(check, forget, prune, repair, stats), :mod:`.copy` and :mod:`.process` (forked processes
and threads); at the top, :mod:`.repository`, :mod:`.opening` with
:mod:`.keyopening`, :mod:`.lock`, :mod:`.progress` and :mod:`.errors`.

Entry points: :func:`open_repository` (which starts deriving the key before
the rest of the package is imported: nothing here is imported before its
first use) and :class:`Repository` (``init``, ``open``, ``backup``,
``snapshots``, ``restore``, ``forget``, ``apply_retention``, ``prune``,
``check``, ``stats``, ``unlock``, ``copy_to``). The format is in
docs/design/repository-format.md, the commands in docs/repository.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haprotect.repo.backup.options import BackupOptions
    from haprotect.repo.copy.copier import CopyReport
    from haprotect.repo.format.config import ChunkerParams
    from haprotect.repo.format.keyfile import KdfParams
    from haprotect.repo.lock import Locker
    from haprotect.repo.maintenance.check import CheckReport, Finding, Severity, Subset
    from haprotect.repo.maintenance.prune import PruneReport
    from haprotect.repo.maintenance.pruneoptions import PruneOptions
    from haprotect.repo.maintenance.retention import Duration, KeepPolicy
    from haprotect.repo.opening import open_repository
    from haprotect.repo.repository import Repository
    from haprotect.repo.restore.options import RestoreOptions

# Loaded on first use, so that a backup does not import check, prune and restore,
# opening a repository not even the backup's modules, and open_repository
# starts deriving the key before the repository's modules are imported.
_LAZY = {
    "open_repository": "opening",
    "Repository": "repository",
    "ChunkerParams": "format.config",
    "KdfParams": "format.keyfile",
    "Locker": "lock",
    "Duration": "maintenance.retention",
    "KeepPolicy": "maintenance.retention",
    "BackupOptions": "backup.options",
    "CopyReport": "copy.copier",
    "CheckReport": "maintenance.check",
    "Finding": "maintenance.check",
    "Severity": "maintenance.check",
    "Subset": "maintenance.check",
    "PruneOptions": "maintenance.pruneoptions",
    "PruneReport": "maintenance.prune",
    "RestoreOptions": "restore.options",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(import_module(f"haprotect.repo.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BackupOptions",
    "CheckReport",
    "ChunkerParams",
    "CopyReport",
    "Duration",
    "Finding",
    "KdfParams",
    "KeepPolicy",
    "Locker",
    "PruneOptions",
    "PruneReport",
    "Repository",
    "RestoreOptions",
    "Severity",
    "Subset",
    "open_repository",
]
