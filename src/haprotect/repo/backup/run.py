"""One backup run: walk, lock, find the parent, archive, write the snapshot.

:meth:`Repository.backup <haprotect.repo.repository.Repository.backup>`
imports this module on first use: a repository opened in the background is
still deriving its key then, and the walk starts before the key is there
(:class:`~haprotect.repo.process.lookahead.Lookahead`, with a head start when a
parent may exist). The lock is taken once the key proves the passphrase
right; then the index is brought up to date, the parent's tree is merged
with the walk (:class:`~haprotect.repo.backup.files_cache.FilesCache`), the
archiver stores what changed, and the snapshot is written last.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from haprotect.errors import NothingCopied, UsageError
from haprotect.model.progress import Phase
from haprotect.model.snapshot import FileError, JSONValue, Snapshot
from haprotect.repo.backup.archiver import Archiver
from haprotect.repo.backup.files_cache import FilesCache
from haprotect.repo.backup.options import BackupOptions
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.walker import Walker, normalize_roots
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.format.snapshots import SNAPSHOTS_PREFIX, write_snapshot
from haprotect.repo.lock import GuardedStore
from haprotect.repo.lockfile import username
from haprotect.repo.process.lookahead import Lookahead
from haprotect.repo.progress import InputCounter, ProgressMeter, ProgressSink

if TYPE_CHECKING:
    from haprotect.repo.format.config import RepoConfig
    from haprotect.repo.format.crypto import MasterKey
    from haprotect.repo.format.index import Index
    from haprotect.repo.format.summaries import SnapshotSummaries
    from haprotect.repo.format.tree import NodeStream
    from haprotect.repo.lock import HeldLock
    from haprotect.storage.base import BlobStore

WALK_HEAD_START = 256
"""Batches of entries (128 each, about 150 KiB) the walk may make before the backup
takes any, when there may be a parent: then most files are usually unchanged, and
the walk is most of the work. A first backup's work is reading; its walk keeps to
the usual depth, and memory to what the reading needs."""


class BackupTarget(Protocol):
    """What a backup needs of the repository it writes into.

    :class:`~haprotect.repo.repository.Repository` is one; a backup reads
    the key only once its walk has started (it may still be derived then).
    """

    @property
    def store(self) -> BlobStore: ...

    @property
    def config(self) -> RepoConfig: ...

    @property
    def key(self) -> MasterKey:
        """The master key, waiting for its derivation."""

    @property
    def index(self) -> Index: ...

    def lock(self, *, exclusive: bool = False, operation: str = "") -> HeldLock:
        """A shared lock, to use as a context manager."""

    def sync_index(self) -> None:
        """Bring the index up to date with the index blobs."""

    def snapshot(self, snapshot_id: str) -> Snapshot:
        """The snapshot whose id is or starts with ``snapshot_id`` (a parent given)."""

    def summaries(self) -> SnapshotSummaries:
        """The snapshots' summaries: the latest of a host and paths, loading only it."""

    def nodes(self, snapshot: Snapshot) -> NodeStream:
        """The nodes of a snapshot in canonical order."""


def run_backup(
    repo: BackupTarget,
    paths: Sequence[str | os.PathLike[str]],
    *,
    tags: Sequence[str] = (),
    metadata: Mapping[str, JSONValue] | None = None,
    host: str | None = None,
    parent: str | None = None,
    use_parent: bool = True,
    on_progress: ProgressSink | None = None,
    options: BackupOptions | None = None,
    record_as: str | None = None,
    parts: BackupParts | None = None,
) -> Snapshot:
    """:meth:`Repository.backup <haprotect.repo.repository.Repository.backup>`.

    ``parts``: what the pipeline is made of (:class:`BackupParts`, the production's
    by default).
    """
    parts = parts or BackupParts()
    started, clock = datetime.now(UTC), time.monotonic()
    sources = normalize_roots(paths)
    if not sources:
        raise UsageError("nothing to back up: no paths given")
    absent = _absent(sources)
    if len(absent) == len(sources):
        raise NothingCopied(
            f"nothing backed up, no snapshot written: {'; '.join(absent)}",
            hint="give paths that exist",
        )
    renamed = _renamed(sources, record_as)
    roots = list(renamed) or sources
    host = host or socket.gethostname()
    shown = tuple(os.fsdecode(r) for r in roots)
    opts = options or BackupOptions()
    errors: list[FileError] = []
    walker = Walker(
        roots,
        lambda path, message: errors.append(FileError(path, message)),
        xattrs=opts.xattrs,
        one_file_system=opts.one_file_system,
        sources=renamed,
        files=parts.files,
    )
    meter = ProgressMeter(Phase.BACKUP, on_progress)
    counter = InputCounter(sources, meter) if meter.active else None
    may_have_parent = parent is not None or (
        use_parent and next(iter(repo.store.list(SNAPSHOTS_PREFIX)), None) is not None
    )
    head_start = WALK_HEAD_START if may_have_parent else 0
    with (
        # the walk starts while the key is derived, if it still is; the
        # lock is taken once the key proves the passphrase right
        Lookahead(walker, head_start=head_start, name="haprotect-walk") as entries,
        repo.lock(operation="backup") as held,
    ):
        repo.sync_index()
        store = GuardedStore(repo.store, held)
        key, index = repo.key, repo.index
        summaries = repo.summaries() if use_parent and parent is None else None
        base: Snapshot | None = None
        if summaries is not None:
            base = summaries.latest(host, shown)
        elif use_parent and parent is not None:
            base = repo.snapshot(parent)
        cache = FilesCache(repo.nodes(base) if base else (), index)
        if counter is not None:
            counter.start()
        uploader = Uploader(store, key, threads=opts.upload_threads)
        archiver = Archiver(key, repo.config, index, uploader, opts, meter, errors, parts)
        try:
            archiver.run(entries, cache)
            uploader.finish(index)
        except BaseException:
            uploader.abort()
            raise
        finally:
            if counter is not None:
                counter.stop()
        stats = archiver.stats(time.monotonic() - clock, uploader.bytes_stored)
        snapshot = Snapshot(
            id="",
            time=started,
            host=host,
            username=username(),
            paths=shown,
            tags=tuple(tags),
            metadata=dict(metadata or {}),
            parent=base.id if base else None,
            tree=tuple(archiver.tree),
            stats=stats,
            errors=tuple(archiver.errors),
        )
        snapshot = write_snapshot(store, key, snapshot)
        if summaries is not None:
            summaries.record(store, [snapshot])
    meter.finish(stats.files_new + stats.files_changed + stats.files_unchanged, stats.bytes_total)
    return snapshot


def _renamed(sources: list[bytes], record_as: str | None) -> dict[bytes, bytes]:
    """``{recorded path: path read}`` for a backup recorded under another name."""
    if record_as is None:
        return {}
    if len(sources) != 1:
        raise UsageError("only one path can be recorded under another name")
    recorded = os.fsencode(record_as)
    parts = recorded.split(b"/")
    if not recorded.startswith(b"/") or any(p in (b".", b"..") for p in parts) or b"" in parts[1:]:
        raise UsageError(
            f"cannot record a backup as {record_as}",
            hint="give an absolute, normalised path (no '.', '..' or '//'), not /",
        )
    return {recorded: sources[0]}


def _absent(roots: Sequence[bytes]) -> list[str]:
    """The roots that cannot be looked at, each with the reason."""
    found = []
    for root in roots:
        try:
            os.lstat(root)
        except OSError as exc:
            found.append(f"{os.fsdecode(root)}: {exc.strerror or exc}")
    return found
